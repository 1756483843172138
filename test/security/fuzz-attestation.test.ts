import { attestationTargets } from './fuzz/targets-attestation.js';
import { fuzzSuite } from './fuzz/fuzz-suite.js';

fuzzSuite('fuzz: attestation evidence', attestationTargets);
