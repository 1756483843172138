import { certificateTargets } from './fuzz/targets-attestation.js';
import { fuzzSuite } from './fuzz/fuzz-suite.js';

fuzzSuite('fuzz: certificates', certificateTargets);
