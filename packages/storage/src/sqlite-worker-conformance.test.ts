import { storageConformance } from './conformance/storage-conformance.js';
import { sqliteFixture } from './conformance/storage-fixture.js';

// The same suite as the inline driver, with every connection on a worker thread.
storageConformance(sqliteFixture('worker'));
