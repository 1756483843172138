import { ApiObject, App, Chart, Yaml } from 'cdk8s';
import {
  gatewayChart,
  namespacesChart,
  networkPoliciesChart,
  openshiftChart,
  redisChart,
  servingChart,
  trustChart,
  type ChartObjects,
  type ComponentInitData,
} from './charts.js';
import { validateKubeObject, type KubeObject } from './kube-objects.js';
import { assertDeploymentPolicy } from './policy.js';
import { imageDigest, placeholderImages, type DeploymentValues } from './values.js';

/**
 * One reference value set as the trust service takes it (docs/trust.md "Reference values";
 * `tresor trust admin` / the admin API `reference-values/set`).
 */
export interface ReferenceValueSetDraft {
  readonly component: string;
  readonly release: string;
  readonly tee: 'snp' | 'tdx';
  readonly measurements: Readonly<Record<string, readonly string[]>>;
  readonly imageDigests: readonly string[];
  readonly initDataHashes: readonly string[];
  readonly modelDigests: readonly string[];
}

/** `reference-values.json`: the payload shape of the signed reference values document. */
export interface ReferenceValuesFile {
  readonly referenceValues: readonly ReferenceValueSetDraft[];
}

export interface RenderedFile {
  /** File name in the output directory, e.g. `10-trust.yaml`. */
  readonly name: string;
  readonly objects: readonly KubeObject[];
  readonly yaml: string;
}

export interface RenderedDeployment {
  readonly files: readonly RenderedFile[];
  readonly referenceValues: ReferenceValuesFile;
  /** Per pod: the init data rendered into its annotation. */
  readonly initData: readonly ComponentInitData[];
  /** Things that render but are not ready for production (placeholder digests, missing launch measurements). */
  readonly warnings: readonly string[];
}

/** The launch measurement that pins a component's guest firmware and kernel, per TEE. */
const LAUNCH_MEASUREMENT = { snp: 'measurement', tdx: 'mrtd' } as const;

function referenceValueSet(values: DeploymentValues, entry: ComponentInitData): ReferenceValueSetDraft {
  const extra =
    entry.component === 'redis' ? values.redis.measurements : values[entry.component].measurements;
  return {
    component: entry.component,
    release: values.release,
    tee: entry.tee,
    measurements: { ...extra, [entry.initData.measurement.name]: [entry.initData.measurement.value] },
    imageDigests: [imageDigest(entry.image)],
    initDataHashes: [entry.initData.digest],
    modelDigests: [],
  };
}

/** Synthesises a chart through cdk8s (ordering, naming) and back to plain objects. */
function synthesise(app: App, chart: ChartObjects): KubeObject[] {
  const construct = new Chart(app, chart.name, { disableResourceNameHashes: true });
  chart.objects.forEach((object, i) => {
    new ApiObject(construct, `${String(i)}-${object.kind}`, object);
  });
  return construct.toJson() as KubeObject[];
}

/**
 * Renders every chart from validated values: validates each object against its Kubernetes (or
 * OpenShift) schema, checks the whole set against the deployment policy, and computes the reference
 * values (init-data digests, image digests) the trust service must be given.
 *
 * @throws TresorError CONFIG_INVALID (an object does not validate), DEPLOYMENT_POLICY_VIOLATION.
 */
export function renderDeployment(values: DeploymentValues): RenderedDeployment {
  const initData: ComponentInitData[] = [];
  const charts: ChartObjects[] = [
    namespacesChart(values),
    trustChart(values, initData),
    ...(values.redis.deploy ? [redisChart(values, initData)] : []),
    servingChart(values, initData),
    gatewayChart(values, initData),
    networkPoliciesChart(values),
    ...(values.openshift.enabled ? [openshiftChart(values)] : []),
  ];
  const app = new App();
  const files = charts.map((chart) => {
    const objects = synthesise(app, chart);
    objects.forEach(validateKubeObject);
    return { name: `${chart.name}.yaml`, objects, yaml: Yaml.stringify(...objects) };
  });
  assertDeploymentPolicy(files.flatMap((f) => f.objects));

  // Redis runs in a TEE too, but does not attest to the trust service (it is stock Redis), so it
  // gets no reference value set; its init data is still measured into its launch.
  const referenceValues: ReferenceValuesFile = {
    referenceValues: initData.filter((e) => e.component !== 'redis').map((e) => referenceValueSet(values, e)),
  };
  const warnings = placeholderImages(values).map(
    (path) => `${path} is a placeholder digest: build the image and set its sha256 digest before you apply`,
  );
  for (const set of referenceValues.referenceValues) {
    if (set.measurements[LAUNCH_MEASUREMENT[set.tee]] === undefined) {
      warnings.push(
        `${set.component}.measurements has no ${LAUNCH_MEASUREMENT[set.tee]}: its reference values pin the init data but not the guest firmware and kernel`,
      );
    }
  }
  return { files, referenceValues, initData, warnings };
}

/** `reference-values.json` as written: stable member order, two-space indent, final newline. */
export function referenceValuesJson(file: ReferenceValuesFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}
