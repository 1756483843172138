import { configTargets } from './fuzz/targets-trust.js';
import { fuzzSuite } from './fuzz/fuzz-suite.js';

fuzzSuite('fuzz: policy and config files', configTargets);
