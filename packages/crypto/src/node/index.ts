/// <reference types="node" />
/**
 * Node entry point of @tresor/crypto (`@tresor/crypto/node`): sealed model files on disk, with
 * native SHA-256 and atomic outputs. Everything else lives in the browser-safe main entry.
 */
export { AtomicOutputFile, type AtomicOutputOptions } from './atomic-output.js';
export { FileByteSource } from './file-source.js';
export { inspectSealedModelFile, type SealedModelFileInfo } from './inspect-model-file.js';
export { readModelKeyFile } from './model-key-file.js';
export type { ModelFileOptions, ModelFilePhase, ModelFileProgress } from './model-file-options.js';
export { sealModelFile, type SealModelFileOptions } from './seal-model-file.js';
export { nodeSha256 } from './sha256.js';
export { unsealModelFile } from './unseal-model-file.js';
