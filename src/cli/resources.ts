import { RESOURCE_TYPES, typeForKind, type ResourceType } from '../api/resources.js';

/** Finds a resource type by the names kubectl accepts: plural, singular, short name, kind. */
export function resolveResource(name: string): ResourceType {
  const lower = name.toLowerCase();
  const [base, group] = lower.includes('.')
    ? [lower.slice(0, lower.indexOf('.')), lower.slice(lower.indexOf('.') + 1)]
    : [lower, undefined];
  const match = RESOURCE_TYPES.find(
    (rt) =>
      (group === undefined || rt.group === group) &&
      (rt.plural === base ||
        rt.singular === base ||
        rt.kind.toLowerCase() === base ||
        rt.shortNames?.includes(base)),
  );
  if (!match) throw new Error(`the server doesn't have a resource type "${name}"`);
  return match;
}

export function resourceForManifest(apiVersion: unknown, kind: unknown): ResourceType {
  if (typeof apiVersion !== 'string' || apiVersion === '') throw new Error('apiVersion not set');
  if (typeof kind !== 'string' || kind === '') throw new Error('kind not set');
  const rt = typeForKind(apiVersion, kind);
  if (!rt) throw new Error(`no matches for kind "${kind}" in version "${apiVersion}"`);
  return rt;
}

/** How kubectl names an object in its messages: `deployment.apps/web`. */
export function displayName(rt: ResourceType, name: string): string {
  return `${rt.singular}${rt.group ? `.${rt.group}` : ''}/${name}`;
}
