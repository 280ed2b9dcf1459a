import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { byGroupResource } from '../../src/api/resources.js';
import { nowTimestamp, type Deployment, type Pod } from '../../src/api/types.js';
import { isReason, resourcePath, type KubeClient } from '../../src/client/rest.js';
import { ControllerManager, type ControllerManagerOptions } from '../../src/controllers/manager.js';
import { startTestApiServer, type TestApiServer } from './apiserver.js';

/**
 * What the controller tests (rollouts, garbage collection, namespaces, DaemonSets,
 * StatefulSets, Jobs, node lifecycle) share: an API server with a controller manager, the
 * real kubectl pointed at it, a fake kubelet that plays the node agent's part for pods
 * (no agent runs containers here), and the small waits and lists they all make.
 */

export const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;
export const RS = byGroupResource.get('apps/replicasets')!;
export const PODS = byGroupResource.get('/pods')!;
export const NAMESPACES = byGroupResource.get('/namespaces')!;
export const CONFIGMAPS = byGroupResource.get('/configmaps')!;
export const NODES = byGroupResource.get('/nodes')!;

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  api: TestApiServer;
  client: KubeClient;
  manager: ControllerManager;
  /** Runs /usr/bin/kubectl against the test API server; never throws on a non-zero exit. */
  kubectl(...args: string[]): Promise<KubectlResult>;
  /**
   * Starts a fake kubelet on this cluster. It stops before the controllers and the API
   * server when the test ends, and an error its loop met then fails the test.
   */
  kubelet(opts?: KubeletOptions): FakeKubelet;
}

/** Starts an API server and a controller manager, both stopped when the test ends. */
export async function startCluster(
  t: TestContext,
  opts: ControllerManagerOptions = {},
): Promise<Cluster> {
  const api = await startTestApiServer();
  const manager = new ControllerManager(api.client, opts);
  await manager.start();
  const kubelets: FakeKubelet[] = [];
  t.after(async () => {
    const stopped = await Promise.allSettled(kubelets.map((k) => k.stop()));
    await manager.stop();
    await api.stop();
    for (const r of stopped) if (r.status === 'rejected') throw r.reason;
  });
  const kubeconfig = api.kubeconfig();
  const cacheDir = join(api.dir, 'kube-cache');
  return {
    api,
    client: api.client,
    manager,
    kubectl: (...args) =>
      runKubectl(['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args]),
    kubelet(kubeletOpts) {
      const kubelet = startKubelet(api.client, kubeletOpts);
      kubelets.push(kubelet);
      return kubelet;
    },
  };
}

/** Runs kubectl, which must exit 0 and, if given, print `expect`; returns its output. */
export async function kubectlOk(c: Cluster, args: string[], expect?: RegExp): Promise<string> {
  const r = await c.kubectl(...args);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
  if (expect) assert.match(r.stdout, expect, `kubectl ${args.join(' ')}`);
  return r.stdout;
}

/** Asynchronously, since the API server under test runs in this very process. */
function runKubectl(args: string[]): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    execFile(
      '/usr/bin/kubectl',
      args,
      { encoding: 'utf8', timeout: 60_000 },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        if (e && typeof e.code === 'string') return reject(e);
        resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn` until it returns something truthy and resolves with that; fails after `ms`. */
export type Wait = <T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms?: number,
) => Promise<T>;

/** A {@link Wait} that gives up after `defaultMs` unless told otherwise, polling every `pollMs`. */
export function waiter(defaultMs: number, pollMs = 25): Wait {
  return async (what, fn, ms = defaultMs) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await fn();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(pollMs);
    }
  };
}

/** Polls every 25 ms; gives up after 20 s unless told otherwise. */
export const waitFor: Wait = waiter(20_000);

/**
 * Awaits a write a fake agent or scheduler makes; false when it lost a race to the
 * controllers (Conflict: the object moved on; NotFound: it went), which the next pass redoes.
 */
export async function tolerant(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (err) {
    if (!isReason(err, 'Conflict') && !isReason(err, 'NotFound')) throw err;
    return false;
  }
}

/** Resolves once the object is gone (GET answers NotFound). */
export async function waitGone(what: string, get: () => Promise<unknown>, ms?: number) {
  await waitFor(
    what,
    async () => {
      try {
        await get();
        return false;
      } catch (err) {
        if (isReason(err, 'NotFound')) return true;
        throw err;
      }
    },
    ms,
  );
}

/** A Deployment of `replicas` pods with one container named `web`. */
export function deployment(name: string, replicas: number, image = 'nginx:1'): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image }] },
      },
    },
  };
}

export function isReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** The pods not being deleted. */
export function live(pods: Pod[]): Pod[] {
  return pods.filter((p) => !p.metadata.deletionTimestamp);
}

/** Every pod of `namespace`, terminating ones included. */
export async function listPods(client: KubeClient, namespace = 'default'): Promise<Pod[]> {
  return (await client.list<Pod>(PODS, namespace)).items;
}

/** The pods of `namespace` that are not being deleted. */
export async function livePods(client: KubeClient, namespace = 'default'): Promise<Pod[]> {
  return live(await listPods(client, namespace));
}

/** Registers a Ready node with `labels` (no agent stands behind it). */
export async function createNode(
  client: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await client.create(NODES, {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  });
}

/** Binds `pod` to `node` as the scheduler would; false when the pod moved on or went. */
export function bindPod(client: KubeClient, pod: Pod, node: string): Promise<boolean> {
  const { name, namespace, uid } = pod.metadata;
  const binding = {
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name, namespace, uid },
    target: { apiVersion: 'v1', kind: 'Node', name: node },
  };
  const path = resourcePath(PODS, namespace, name, 'binding');
  return tolerant(client.request('POST', path, { body: binding }));
}

/** The checks `kubectl rollout status` makes before it reports success. */
export function rolloutComplete(d: Deployment): boolean {
  const s = d.status ?? {};
  const want = d.spec.replicas ?? 1;
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  return (
    (d.metadata.generation ?? 0) <= (s.observedGeneration ?? 0) &&
    progressing?.reason !== 'ProgressDeadlineExceeded' &&
    s.updatedReplicas === want &&
    s.replicas === want &&
    s.availableReplicas === want
  );
}

/** Waits until the Deployment's current generation has rolled out completely. */
export function waitRolledOut(client: KubeClient, name = 'web'): Promise<Deployment> {
  return waitFor(`deployment ${name} to roll out`, async () => {
    const d = await client.get<Deployment>(DEPLOYMENTS, 'default', name);
    return rolloutComplete(d) && d;
  });
}

export interface KubeletOptions {
  /**
   * The node pods are bound to (no Node object is needed for binding), or the choice for
   * each pod, where undefined leaves the pod unbound but still run (default `node-1`).
   */
  node?: string | ((pod: Pod) => string | undefined);
  /** Pods for which this returns false have not started yet and stay pending for now. */
  startIf?: (pod: Pod) => boolean;
  /** Pods for which this returns true run but never become ready. */
  unready?: (pod: Pod) => boolean;
  /**
   * How long a terminating pod lingers before the kubelet removes it (default 150 ms;
   * Infinity leaves terminating pods to the API server and the garbage collector).
   */
  terminationMs?: number;
  /** Sees every pod list the kubelet reads (terminating pods included), for invariants. */
  sample?: (pods: Pod[]) => void;
  /** The pause between passes (default 20 ms). */
  periodMs?: number;
}

export interface FakeKubelet {
  /** Stops the loop; rejects with the first error the loop met, if any. */
  stop(): Promise<void>;
}

/**
 * Plays the scheduler and the kubelet for every pod of the cluster: binds pending pods to
 * the node `opts.node` names, reports them Running and Ready (or Running and not ready),
 * and finishes graceful deletions after a short delay, the way an agent deletes a pod with
 * grace 0 once its containers stopped. Pods that already ran (Running, Succeeded or
 * Failed) are left as they are.
 */
function startKubelet(client: KubeClient, opts: KubeletOptions = {}): FakeKubelet {
  let stopped = false;
  let failure: unknown;
  const terminatingSince = new Map<string, number>();
  const loop = (async () => {
    while (!stopped) {
      try {
        const { items } = await client.list<Pod>(PODS);
        opts.sample?.(items);
        await Promise.all(items.map((pod) => tend(client, pod, opts, terminatingSince)));
      } catch (err) {
        failure ??= err;
      }
      await sleep(opts.periodMs ?? 20);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      if (failure) throw failure;
    },
  };
}

async function tend(
  client: KubeClient,
  pod: Pod,
  opts: KubeletOptions,
  terminatingSince: Map<string, number>,
): Promise<void> {
  const { namespace, name, uid } = pod.metadata;
  if (pod.metadata.deletionTimestamp) {
    const since = terminatingSince.get(uid!) ?? Date.now();
    terminatingSince.set(uid!, since);
    if (Date.now() - since < (opts.terminationMs ?? 150)) return;
    const deletion = { gracePeriodSeconds: 0, preconditions: { uid } };
    await tolerant(client.delete(PODS, namespace, name!, deletion));
    return;
  }
  const node = typeof opts.node === 'function' ? opts.node(pod) : (opts.node ?? 'node-1');
  if (!pod.spec.nodeName && node) {
    await bindPod(client, pod, node);
    return;
  }
  const phase = pod.status?.phase;
  const ran = phase === 'Running' || phase === 'Succeeded' || phase === 'Failed';
  if (ran || !(opts.startIf?.(pod) ?? true)) return;
  await tolerant(client.updateStatus(PODS, started(pod, opts)));
}

/** The status an agent reports for a pod whose containers started. */
function started(pod: Pod, opts: KubeletOptions): Pod {
  const at = nowTimestamp();
  const ready = !opts.unready?.(pod);
  const state = ready
    ? { running: { startedAt: at } }
    : { waiting: { reason: 'CrashLoopBackOff', message: 'back-off restarting' } };
  const status = {
    ...pod.status,
    phase: 'Running',
    conditions: [
      ...(pod.status?.conditions ?? []).filter((c) => c.type !== 'Ready'),
      { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: at },
    ],
    containerStatuses: pod.spec.containers.map((c) => ({
      name: c.name,
      ready,
      restartCount: 0,
      image: c.image,
      imageID: '',
      state,
      lastState: {},
    })),
  };
  return { ...pod, status } as Pod;
}
