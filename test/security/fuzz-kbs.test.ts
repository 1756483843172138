import { kbsTargets } from './fuzz/targets-trust.js';
import { fuzzSuite } from './fuzz/fuzz-suite.js';

fuzzSuite('fuzz: KBS messages', kbsTargets);
