/**
 * Node entry point of @tresor/crypto (`@tresor/crypto/node`): sealed model files on disk, sealed
 * and unsealed with node:crypto (AES-256-GCM on this thread, SHA-256 on a worker thread), in one
 * read pass, into atomic outputs; and `nodeOhttpAead`, the synchronous node:crypto backend of
 * OHTTP responses (one AES-GCM call per sealed chunk, no thread-pool job). It shares the format code with the browser-safe main entry,
 * which holds everything else. Its own TypeScript project (tsconfig.json here) is the only one
 * that sees Node's types.
 */
export { AtomicOutputFile, type AtomicOutputOptions } from './atomic-output.js';
export { FileByteSource } from './file-source.js';
export { inspectSealedModelFile, type SealedModelFileInfo } from './inspect-model-file.js';
export { readModelKeyFile } from './model-key-file.js';
export type { ModelFileOptions, ModelFilePhase, ModelFileProgress } from './model-file-options.js';
export { sealModelFile, type SealModelFileOptions } from './seal-model-file.js';
export { nodeOhttpAead } from './ohttp-aead.js';
export { nodeSha256 } from './sha256.js';
export { unsealModelFile } from './unseal-model-file.js';
