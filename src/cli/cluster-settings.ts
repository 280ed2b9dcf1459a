import { byGroupResource } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { isReason, type KubeClient } from '../client/rest.js';

/**
 * The cluster-wide settings an agent needs and would otherwise have to be told by hand:
 * the pod range node ranges are cut from (`--cluster-cidr` of `flyces server`) and the
 * Service range. The server keeps them in the ConfigMap kube-public/flyces-cluster; a
 * joining agent reads it (every node may read kube-public's ConfigMaps) unless given
 * `--cluster-cidr`.
 */

const CONFIGMAPS = byGroupResource.get('/configmaps')!;
export const SETTINGS_NAMESPACE = 'kube-public';
export const SETTINGS_NAME = 'flyces-cluster';

export interface ClusterSettings {
  clusterCIDR: string;
  serviceCIDR: string;
}

/** Writes the settings, creating the ConfigMap or replacing what it said. */
export async function publishClusterSettings(
  client: KubeClient,
  settings: ClusterSettings,
): Promise<void> {
  const body: KObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: SETTINGS_NAME, namespace: SETTINGS_NAMESPACE },
    data: { ...settings },
  } as KObject;
  try {
    await client.create(CONFIGMAPS, body);
  } catch (err) {
    if (!isReason(err, 'AlreadyExists')) throw err;
    await client.patch(CONFIGMAPS, SETTINGS_NAMESPACE, SETTINGS_NAME, { data: settings }, 'merge');
  }
}

/** The published settings, or undefined when the server published none (an older one). */
export async function readClusterSettings(
  client: KubeClient,
): Promise<Partial<ClusterSettings> | undefined> {
  try {
    const cm = await client.get<KObject & { data?: Record<string, string> }>(
      CONFIGMAPS,
      SETTINGS_NAMESPACE,
      SETTINGS_NAME,
    );
    return cm.data ?? {};
  } catch (err) {
    if (isReason(err, 'NotFound')) return undefined;
    throw err;
  }
}
