/**
 * The control-plane bench's probes (bench/control-plane.ts), on a thread of their own: the
 * bench's main thread decodes three watch streams of every pod, and a probe sharing that
 * thread would count the bench's own backlog as the API server's latency. Here a probe's
 * answer is read as soon as it arrives.
 *
 * Writes: every WRITE_EVERY_MS a ConfigMap is created or one of a pool is merge-patched (in
 * turn), open loop, up to WRITES_IN_FLIGHT at once. Lists: all pods of one namespace (in
 * turn), closed loop every LIST_EVERY_MS, timed to the last byte, read but not parsed.
 * Told `stop`, it finishes what is in flight and posts the samples.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { byGroupResource } from '../src/api/resources.js';
import { KubeClient, resourcePath, type ClientConfig } from '../src/client/rest.js';

export interface ProbeSettings {
  client: ClientConfig;
  namespaces: string[];
  pool: number;
  writeEveryMs: number;
  writesInFlight: number;
  listEveryMs: number;
}

export interface ProbeSamples {
  creates: number[];
  patches: number[];
  lists: number[];
  listBytes: number[];
  errors: string[];
}

const CONFIGMAPS = byGroupResource.get('/configmaps')!;
const PODS = byGroupResource.get('/pods')!;
const settings = workerData as ProbeSettings;
const client = new KubeClient(settings.client);
const samples: ProbeSamples = { creates: [], patches: [], lists: [], listBytes: [], errors: [] };
const elapsed = (since: number) => performance.now() - since;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const inflight = new Set<Promise<void>>();
function timed(into: number[], what: string, fn: () => Promise<unknown>): void {
  const start = performance.now();
  const done = fn().then(
    () => void into.push(elapsed(start)),
    (err: Error) => void samples.errors.push(`${what}: ${err.message}`),
  );
  inflight.add(done);
  void done.finally(() => inflight.delete(done));
}

let tick = 0;
const writer = setInterval(() => {
  if (inflight.size >= settings.writesInFlight) {
    samples.errors.push('write skipped: busy');
    return;
  }
  const n = tick++;
  const namespace = settings.namespaces[0];
  if (n % 2 === 0) {
    const metadata = { name: `probe-${n}`, namespace };
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata, data: { n: `${n}` } };
    timed(samples.creates, 'create', () => client.create(CONFIGMAPS, cm));
  } else {
    // Patches go round a pool, so that no two are likely to race for one object.
    const name = `probe-pool-${n % settings.pool}`;
    const patch = { data: { n: `${n}` } };
    timed(samples.patches, 'patch', () => client.patch(CONFIGMAPS, namespace, name, patch));
  }
}, settings.writeEveryMs);

let listing = true;
const lister = (async () => {
  for (let i = 0; listing; i++) {
    const start = performance.now();
    try {
      const ns = settings.namespaces[i % settings.namespaces.length];
      const res = await client.open('GET', resourcePath(PODS, ns), { timeoutMs: 120_000 });
      let bytes = 0;
      for await (const chunk of res) bytes += (chunk as Buffer).length;
      samples.lists.push(elapsed(start));
      samples.listBytes.push(bytes);
    } catch (err) {
      samples.errors.push(`list: ${(err as Error).message}`);
    }
    await sleep(Math.max(0, settings.listEveryMs - elapsed(start)));
  }
})();

parentPort!.once('message', () => {
  clearInterval(writer);
  listing = false;
  void Promise.allSettled([lister, ...inflight]).then(() => {
    client.close();
    parentPort!.postMessage(samples);
  });
});
