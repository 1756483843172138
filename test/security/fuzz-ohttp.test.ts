import { ohttpTargets } from './fuzz/targets-crypto.js';
import { fuzzSuite } from './fuzz/fuzz-suite.js';

fuzzSuite('fuzz: OHTTP and BHTTP', ohttpTargets);
