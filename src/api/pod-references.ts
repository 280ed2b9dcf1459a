import type { Pod } from './types.js';

/**
 * The ConfigMaps and Secrets a pod refers to (env and envFrom of every container and init
 * container, volumes and the sources of projected ones, and image pull secrets), as
 * `ConfigMap/<namespace>/<name>` and `Secret/<namespace>/<name>` keys: what the node running
 * it must be able to read, and nothing more (the node agent fetches them; the Node
 * authorizer allows exactly them).
 */
export function referencedObjects(pod: Pod): Set<string> {
  const ns = pod.metadata.namespace ?? 'default';
  const out = new Set<string>();
  const add = (kind: string, name: unknown) => {
    if (typeof name === 'string' && name) out.add(`${kind}/${ns}/${name}`);
  };
  const spec = pod.spec ?? ({} as Pod['spec']);
  for (const c of [...asList(spec.containers), ...asList(spec.initContainers)]) {
    for (const from of asList(c?.envFrom)) {
      add('ConfigMap', from?.configMapRef?.name);
      add('Secret', from?.secretRef?.name);
    }
    for (const e of asList(c?.env)) {
      add('ConfigMap', e?.valueFrom?.configMapKeyRef?.name);
      add('Secret', e?.valueFrom?.secretKeyRef?.name);
    }
  }
  for (const v of asList(spec.volumes)) {
    add('ConfigMap', v?.configMap?.name);
    add('Secret', v?.secret?.secretName);
    for (const source of asList(v?.projected?.sources)) {
      add('ConfigMap', source?.configMap?.name);
      add('Secret', source?.secret?.name);
    }
  }
  for (const ref of asList(spec.imagePullSecrets)) add('Secret', ref?.name);
  return out;
}

function asList(v: unknown): any[] {
  return Array.isArray(v) ? v : [];
}
