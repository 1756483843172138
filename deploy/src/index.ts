/**
 * @tresor/deploy: Kubernetes / Confidential Containers manifests for Tresor, generated with cdk8s,
 * validated offline against the Kubernetes schemas and the deployment policy (docs/deploy.md).
 */
export {
  deploymentValuesSchema,
  loadDeploymentValues,
  parseDeploymentValues,
  placeholderImages,
  redisUrl,
  trustUrl,
  DEFAULT_SWISS_REGIONS,
  MAX_VALUES_BYTES,
  PLACEHOLDER_DIGEST,
  type DeploymentValues,
} from './values.js';
export {
  CONFIDENTIAL_RUNTIME_CLASSES,
  DEFAULT_RUNTIME_CLASSES,
  INIT_DATA_ANNOTATION,
  isConfidentialRuntimeClass,
  type TeeKind,
} from './runtime-classes.js';
export {
  buildInitData,
  encodeInitDataAnnotation,
  initDataDigest,
  renderInitDataToml,
  DEFAULT_AGENT_POLICY,
  INIT_DATA_VERSION,
  type InitData,
  type InitDataInput,
} from './init-data.js';
export { validateKubeObject, objectName, type KubeObject } from './kube-objects.js';
export {
  assertDeploymentPolicy,
  checkDeploymentPolicy,
  type DeploymentPolicyRule,
  type DeploymentPolicyViolation,
} from './policy.js';
export {
  referenceValuesJson,
  renderDeployment,
  type ReferenceValueSetDraft,
  type ReferenceValuesFile,
  type RenderedDeployment,
  type RenderedFile,
} from './render.js';
export { writeOutputDirectory, type OutputFile, type WriteOutputOptions } from './write-output.js';
export {
  lintDockerfile,
  parseDockerfile,
  type DockerfileFinding,
  type DockerfileLintOptions,
  type DockerfileRule,
} from './dockerfile-lint.js';
export {
  formatImagesFile,
  parseImagesFile,
  withImages,
  imagesFileSchema,
  MAX_IMAGES_BYTES,
  type ImagesFile,
} from './image-digests.js';
