import type { TestContext } from 'node:test';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { byGroupResource } from '../../src/api/resources.js';
import { nowTimestamp, type Deployment, type Pod } from '../../src/api/types.js';
import { isReason, resourcePath, type KubeClient } from '../../src/client/rest.js';
import { ControllerManager, type ControllerManagerOptions } from '../../src/controllers/manager.js';
import { startTestApiServer, type TestApiServer } from './apiserver.js';

/**
 * What the workload tests (rollouts, garbage collection, namespaces) share: an API server
 * with a controller manager, the real kubectl pointed at it, and a fake kubelet that plays
 * the node agent's part for pods, since no agent runs containers here.
 */

export const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;
export const RS = byGroupResource.get('apps/replicasets')!;
export const PODS = byGroupResource.get('/pods')!;
export const NAMESPACES = byGroupResource.get('/namespaces')!;
export const CONFIGMAPS = byGroupResource.get('/configmaps')!;

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
}

/** Starts an API server and a controller manager, both stopped when the test ends. */
export async function startCluster(
  t: TestContext,
  opts: ControllerManagerOptions = {},
): Promise<Cluster> {
  const api = await startTestApiServer();
  const manager = new ControllerManager(api.client, opts);
  await manager.start();
  t.after(async () => {
    await manager.stop();
    await api.stop();
  });
  const kubeconfig = api.kubeconfig();
  const cacheDir = join(api.dir, 'kube-cache');
  return {
    api,
    client: api.client,
    manager,
    kubectl: (...args) =>
      runKubectl(['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args]),
  };
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

/** Polls `fn` until it returns something truthy; fails after `ms`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
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

export interface KubeletOptions {
  /** The node pods are bound to (no Node object is needed for binding). */
  node?: string;
  /** Pods for which this returns true run but never become ready. */
  unready?: (pod: Pod) => boolean;
  /** How long a terminating pod lingers before the kubelet removes it (default 150 ms). */
  terminationMs?: number;
  /** Sees every pod list the kubelet reads (terminating pods included), for invariants. */
  sample?: (pods: Pod[]) => void;
}

export interface FakeKubelet {
  /** Stops the loop; rejects with the first error the loop met, if any. */
  stop(): Promise<void>;
}

/**
 * Plays the kubelet for every pod of the cluster: binds pending pods to one node, reports
 * them Running and Ready (or Running and not ready), and finishes graceful deletions after
 * a short delay, the way an agent deletes a pod with grace 0 once its containers stopped.
 */
export function startKubelet(t: TestContext, client: KubeClient, opts: KubeletOptions = {}) {
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
      await sleep(20);
    }
  })();
  const kubelet: FakeKubelet = {
    async stop() {
      stopped = true;
      await loop;
      if (failure) throw failure;
    },
  };
  t.after(() => kubelet.stop().catch(() => undefined));
  return kubelet;
}

async function tend(
  client: KubeClient,
  pod: Pod,
  opts: KubeletOptions,
  terminatingSince: Map<string, number>,
): Promise<void> {
  const { namespace, name, uid } = pod.metadata;
  try {
    if (pod.metadata.deletionTimestamp) {
      const since = terminatingSince.get(uid!) ?? Date.now();
      terminatingSince.set(uid!, since);
      if (Date.now() - since < (opts.terminationMs ?? 150)) return;
      await client.delete(PODS, namespace, name!, {
        gracePeriodSeconds: 0,
        preconditions: { uid },
      });
      return;
    }
    if (!pod.spec.nodeName) {
      const binding = {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace, uid },
        target: { apiVersion: 'v1', kind: 'Node', name: opts.node ?? 'node-1' },
      };
      await client.request('POST', resourcePath(PODS, namespace, name, 'binding'), {
        body: binding,
      });
      return;
    }
    if (pod.status?.phase !== 'Running') await client.updateStatus(PODS, started(pod, opts));
  } catch (err) {
    if (!isReason(err, 'Conflict') && !isReason(err, 'NotFound')) throw err;
  }
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
