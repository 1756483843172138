import { sealedModelTargets } from './fuzz/targets-crypto.js';
import { fuzzSuite } from './fuzz/fuzz-suite.js';

fuzzSuite('fuzz: sealed models', sealedModelTargets);
