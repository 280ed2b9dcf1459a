import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { KObject } from '../api/types.js';
import { isReason, KubeClient, resourcePath } from '../client/rest.js';
import { loadKubeconfig } from './kubeconfig.js';
import { displayName, resolveResource, resourceForManifest } from './resources.js';

/**
 * The flyces commands that act as an API client, for users without kubectl: apply, get,
 * delete and logs, with kubectl's meaning and output.
 */

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface ClientFlags {
  kubeconfig?: string;
  namespace?: string;
}

export function connect(flags: ClientFlags): { client: KubeClient; namespace: string } {
  const path =
    flags.kubeconfig ?? process.env.KUBECONFIG ?? join(homedir(), '.flyces', 'kubeconfig');
  const config = loadKubeconfig(path);
  return {
    client: new KubeClient({ ...config, userAgent: 'flyces-cli' }),
    namespace: flags.namespace ?? config.namespace,
  };
}

/** Reads the documents of a manifest file (YAML or JSON, `-` for stdin); skips empty ones. */
export function readManifests(file: string): KObject[] {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  const docs = YAML.parseAllDocuments(text);
  const objects: KObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) continue;
    if (typeof obj !== 'object' || Array.isArray(obj))
      throw new Error(`${file}: a document is not an object`);
    if (obj.kind === 'List' && Array.isArray(obj.items)) objects.push(...obj.items);
    else objects.push(obj as KObject);
  }
  return objects;
}

/**
 * The patch that takes the live object from the last applied manifest to the new one:
 * the new manifest's fields, plus null for every field the last manifest had and the new
 * one dropped (a three-way merge over maps; lists are replaced whole).
 */
export function applyPatch(last: unknown, next: unknown): unknown {
  if (!isMap(next)) return next;
  const patch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(next)) {
    patch[key] =
      isMap(value) && isMap(last) && isMap(last[key]) ? applyPatch(last[key], value) : value;
  }
  if (isMap(last)) for (const key of Object.keys(last)) if (!(key in next)) patch[key] = null;
  return patch;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export async function applyCommand(file: string, flags: ClientFlags): Promise<void> {
  const { client, namespace } = connect(flags);
  try {
    for (const obj of readManifests(file)) {
      const rt = resourceForManifest(obj.apiVersion, obj.kind);
      const name = obj.metadata?.name;
      if (!name) throw new Error(`${file}: ${obj.kind}: metadata.name is required`);
      const ns = rt.namespaced ? (obj.metadata.namespace ?? namespace) : undefined;
      if (ns) obj.metadata.namespace = ns;
      const manifest = JSON.stringify(obj);
      obj.metadata.annotations = { ...obj.metadata.annotations, [LAST_APPLIED]: manifest + '\n' };
      let live: KObject | undefined;
      try {
        live = await client.get(rt, ns, name);
      } catch (err) {
        if (!isReason(err, 'NotFound')) throw err;
      }
      if (!live) {
        await client.create(rt, obj);
        console.log(`${displayName(rt, name)} created`);
        continue;
      }
      const lastText = live.metadata.annotations?.[LAST_APPLIED];
      const last = lastText ? JSON.parse(lastText) : {};
      if (lastText === manifest + '\n') {
        console.log(`${displayName(rt, name)} unchanged`);
        continue;
      }
      const patch = applyPatch(last, obj);
      await client.patch(rt, ns, name, patch, 'merge');
      console.log(`${displayName(rt, name)} configured`);
    }
  } finally {
    client.close();
  }
}

export async function deleteCommand(
  args: string[],
  file: string | undefined,
  flags: ClientFlags,
): Promise<void> {
  const { client, namespace } = connect(flags);
  try {
    const targets: { rt: ReturnType<typeof resolveResource>; ns?: string; name: string }[] = [];
    const named = (obj: KObject) => {
      if (!obj.metadata?.name) throw new Error(`${file}: ${obj.kind}: metadata.name is required`);
      return obj.metadata.name;
    };
    if (file) {
      for (const obj of readManifests(file)) {
        const rt = resourceForManifest(obj.apiVersion, obj.kind);
        const ns = rt.namespaced ? (obj.metadata?.namespace ?? namespace) : undefined;
        targets.push({ rt, ns, name: named(obj) });
      }
    } else {
      if (args.length < 2)
        throw new Error('usage: flyces delete RESOURCE NAME... or flyces delete -f FILE');
      const rt = resolveResource(args[0]);
      for (const name of args.slice(1))
        targets.push({ rt, ns: rt.namespaced ? namespace : undefined, name });
    }
    for (const t of targets) {
      await client.delete(t.rt, t.ns, t.name, { propagationPolicy: 'Background' });
      console.log(`${displayName(t.rt, t.name).replace('/', ' "')}" deleted`);
    }
  } finally {
    client.close();
  }
}

interface Table {
  columnDefinitions: { name: string; priority: number }[];
  rows: { cells: unknown[]; object?: { metadata?: { namespace?: string } } }[];
}

export async function getCommand(
  args: string[],
  flags: ClientFlags & { output?: string; allNamespaces?: boolean; selector?: string },
): Promise<void> {
  const { client, namespace } = connect(flags);
  try {
    if (args.length === 0) throw new Error('usage: flyces get RESOURCE [NAME] [-o wide|yaml|json]');
    const rt = resolveResource(args[0]);
    const name = args[1];
    const ns = rt.namespaced && !flags.allNamespaces ? namespace : undefined;
    const path = resourcePath(rt, ns, name);
    const query = { labelSelector: flags.selector };
    if (flags.output === 'yaml' || flags.output === 'json') {
      const obj = await client.request('GET', path, { query });
      console.log(flags.output === 'json' ? JSON.stringify(obj, null, 2) : YAML.stringify(obj));
      return;
    }
    const table = await client.request<Table>('GET', path, { query, accept: TABLE_ACCEPT });
    printTable(table, flags.output === 'wide', rt.namespaced && !!flags.allNamespaces);
  } finally {
    client.close();
  }
}

const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

function printTable(table: Table, wide: boolean, withNamespace: boolean): void {
  const columns = table.columnDefinitions
    .map((c, i) => ({ ...c, i }))
    .filter((c) => wide || c.priority === 0);
  if (table.rows.length === 0) {
    console.error('No resources found');
    return;
  }
  const header = [
    ...(withNamespace ? ['NAMESPACE'] : []),
    ...columns.map((c) => c.name.toUpperCase()),
  ];
  const rows = table.rows.map((r) => [
    ...(withNamespace ? [r.object?.metadata?.namespace ?? ''] : []),
    ...columns.map((c) => String(r.cells[c.i] ?? '')),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const line of [header, ...rows]) {
    console.log(
      line
        .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i])))
        .join('   ')
        .trimEnd(),
    );
  }
}

export async function logsCommand(
  pod: string,
  flags: ClientFlags & {
    container?: string;
    follow?: boolean;
    tail?: string;
    previous?: boolean;
    timestamps?: boolean;
  },
): Promise<void> {
  const { client, namespace } = connect(flags);
  try {
    const rt = resolveResource('pods');
    const res = await client.open('GET', resourcePath(rt, namespace, pod, 'log'), {
      query: {
        container: flags.container,
        follow: flags.follow || undefined,
        tailLines: flags.tail,
        previous: flags.previous || undefined,
        timestamps: flags.timestamps || undefined,
      },
      timeoutMs: flags.follow ? 0 : 30_000,
    });
    for await (const chunk of res) process.stdout.write(chunk as Buffer);
  } finally {
    client.close();
  }
}
