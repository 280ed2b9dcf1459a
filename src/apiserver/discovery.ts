import { apiVersionOf, RESOURCE_TYPES, type ResourceType } from '../api/resources.js';

/**
 * Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`): what
 * kubectl reads to map `kubectl get deploy` to a URL. Built once from the resource table.
 */

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const SUBRESOURCE_VERBS: Record<
  string,
  { verbs: string[]; kind?: string; group?: string; version?: string }
> = {
  status: { verbs: ['get', 'patch', 'update'] },
  scale: { verbs: ['get', 'patch', 'update'], kind: 'Scale', group: 'autoscaling', version: 'v1' },
  binding: { verbs: ['create'], kind: 'Binding', group: '', version: 'v1' },
  log: { verbs: ['get'], kind: 'Pod', group: '', version: 'v1' },
  exec: { verbs: ['create', 'get'], kind: 'PodExecOptions', group: '', version: 'v1' },
  attach: { verbs: ['create', 'get'], kind: 'PodAttachOptions', group: '', version: 'v1' },
};

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-flyces.0.1.0',
  gitCommit: 'unknown',
  gitTreeState: 'clean',
  buildDate: '2026-12-04T00:00:00Z',
  goVersion: 'none (Node.js)',
  compiler: 'tsc',
  platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
};

export function groups(): { name: string; version: string }[] {
  const seen = new Map<string, string>();
  for (const rt of RESOURCE_TYPES) if (rt.group) seen.set(rt.group, rt.version);
  return [...seen].map(([name, version]) => ({ name, version }));
}

export function apiVersions(): unknown {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }],
  };
}

function groupEntry(name: string, version: string) {
  const gv = { groupVersion: `${name}/${version}`, version };
  return { name, versions: [gv], preferredVersion: gv };
}

export function apiGroupList(): unknown {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups().map((g) => groupEntry(g.name, g.version)),
  };
}

export function apiGroup(name: string): unknown | undefined {
  const g = groups().find((x) => x.name === name);
  if (!g) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.name, g.version) };
}

function resourceEntries(rt: ResourceType): unknown[] {
  const main = {
    name: rt.plural,
    singularName: rt.singular,
    namespaced: rt.namespaced,
    kind: rt.kind,
    verbs: VERBS,
    ...(rt.shortNames ? { shortNames: rt.shortNames } : {}),
    ...(rt.categories ? { categories: rt.categories } : {}),
    storageVersionHash: '',
  };
  const subs = rt.subresources.map((sub) => {
    const info = SUBRESOURCE_VERBS[sub];
    return {
      name: `${rt.plural}/${sub}`,
      singularName: '',
      namespaced: rt.namespaced,
      kind: info.kind ?? rt.kind,
      verbs: info.verbs,
      ...(info.group !== undefined && info.group !== rt.group
        ? { group: info.group, version: info.version }
        : {}),
    };
  });
  return [main, ...subs];
}

/** The APIResourceList of one group version, or undefined if it is not served. */
export function resourceList(group: string, version: string): unknown | undefined {
  const types = RESOURCE_TYPES.filter((rt) => rt.group === group && rt.version === version);
  if (types.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionOf(types[0]),
    resources: types.flatMap(resourceEntries),
  };
}
