import { storageConformance } from './conformance/storage-conformance.js';
import { sqliteFixture } from './conformance/storage-fixture.js';

storageConformance(sqliteFixture());
