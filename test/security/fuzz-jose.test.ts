import { joseTargets } from './fuzz/targets-trust.js';
import { fuzzSuite } from './fuzz/fuzz-suite.js';

fuzzSuite('fuzz: JWE and JWS', joseTargets);
