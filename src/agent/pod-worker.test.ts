import { test } from 'node:test';
import assert from 'node:assert/strict';

import { pino } from 'pino';

import type { Container, KObject, Pod, PodStatus, Secret } from '../api/types.js';
import { EventRecorder } from '../client/events.js';
import type { KubeClient } from '../client/rest.js';
import {
  RuntimeError,
  type ContainerStatus,
  type ImageService,
  type RuntimeService,
  type SandboxStatus,
} from '../runtime/runtime.js';
import { containerConfig, hostNames, PodWorker, pullSecrets, startsEarly } from './pod-worker.js';

const pod = (containers: Partial<Container>[], init: Partial<Container>[] = []): Pod =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u' },
    spec: {
      containers: containers.map((c) => ({ name: 'c', image: 'i', ...c })),
      ...(init.length
        ? { initContainers: init.map((c) => ({ name: 'i', image: 'i', ...c })) }
        : {}),
    },
  }) as Pod;

/** The ready sandbox of pod `p` (uid u) that the worker tests sync against. */
const sandbox: SandboxStatus = {
  id: 's',
  podUid: 'u',
  podName: 'p',
  podNamespace: 'default',
  labels: {},
  state: 'ready',
  ip: '10.42.0.2',
  createdAt: '',
};

const silentLog = pino({ level: 'silent' });

/** Events nobody looks at. */
const quietEvents = {
  normal: () => undefined,
  warning: () => undefined,
} as unknown as EventRecorder;

/** An image store that has every image. */
const everyImage = { getImage: async () => ({}) } as unknown as ImageService;

/** A pod worker on node address 10.0.0.1 whose status changes go nowhere. */
function workerWith(
  runtime: RuntimeService,
  images: ImageService = everyImage,
  events: EventRecorder = quietEvents,
): PodWorker {
  return new PodWorker(runtime, images, events, '10.0.0.1', silentLog, {
    changed: () => undefined,
  });
}

test('containers start while the network is attached only when they need no pod IP first', () => {
  const podIP = { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } };
  const podIPs = { name: 'IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } };
  const nodeName = { name: 'N', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };
  const hook = { postStart: { exec: { command: ['true'] } } };
  const cases: [string, Pod, boolean][] = [
    ['plain container', pod([{}]), true],
    ['env from another field', pod([{ env: [nodeName] }]), true],
    ['preStop hook only', pod([{ lifecycle: { preStop: hook.postStart } }]), true],
    ['env names status.podIP', pod([{}, { env: [podIP] }]), false],
    ['env names status.podIPs', pod([{ env: [podIPs] }]), false],
    ['postStart hook', pod([{ lifecycle: hook }]), false],
    ['init containers', pod([{}], [{}]), false],
  ];
  for (const [name, p, want] of cases) assert.equal(startsEarly(p), want, name);
});

/** A runtime whose sandbox is ready and whose every container create fails. */
function refusingRuntime(creates: number[]): RuntimeService {
  return {
    listContainers: async () => [],
    createContainer: async () => {
      creates.push(Date.now());
      throw new RuntimeError('CreateContainerError', `no space left on device (${creates.length})`);
    },
  } as unknown as RuntimeService;
}

test('a container whose create fails is tried again at a growing interval, its reason shown', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const creates: number[] = [];
  const warnings: string[] = [];
  const events = {
    normal: () => undefined,
    warning: (_o: unknown, reason: string, message: string) =>
      warnings.push(`${reason}: ${message}`),
  } as unknown as EventRecorder;
  const worker = workerWith(refusingRuntime(creates), everyImage, events);
  const p = pod([{ command: ['sleep', '1'] }]);
  const waitingOf = (s: PodStatus | undefined) => s?.containerStatuses?.[0]?.state?.waiting;

  // Syncs every 100 ms for 75 s, as often as anything could ask.
  let last: PodStatus | undefined;
  for (let ms = 0; ms < 75_000; ms += 100) {
    last = (await worker.sync(p, [sandbox], [])).status;
    t.mock.timers.tick(100);
  }
  const gaps = creates.slice(1).map((at, i) => at - creates[i]);
  assert.deepEqual(gaps, [10_000, 20_000, 40_000]);
  assert.deepEqual(waitingOf(last), {
    reason: 'CreateContainerError',
    message: 'no space left on device (4)',
  });
  assert.equal(warnings.length, 4);
  assert.equal(warnings[3], 'Failed: Error: no space left on device (4)');
});

test('a failed pull is tried again 10 s later, then at twice the interval, as kubelet does', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const pulls: number[] = [];
  const images = {
    getImage: async () => undefined,
    pullImage: async () => {
      pulls.push(Date.now());
      throw new RuntimeError('ErrImagePull', 'manifest unknown');
    },
  } as unknown as ImageService;
  const worker = workerWith(refusingRuntime([]), images);
  const p = pod([{ image: 'localhost:5000/missing:1' }]);
  const reasons = new Set<string>();
  for (let ms = 0; ms < 75_000; ms += 100) {
    const status = (await worker.sync(p, [sandbox], [])).status;
    const reason = status?.containerStatuses?.[0]?.state?.waiting?.reason;
    if (reason) reasons.add(reason);
    t.mock.timers.tick(100);
  }
  const gaps = pulls.slice(1).map((at, i) => at - pulls[i]);
  assert.deepEqual(gaps, [10_000, 20_000, 40_000]);
  assert.deepEqual([...reasons].sort(), ['ErrImagePull', 'ImagePullBackOff']);
});

/** A client that keeps the Events written to it, as the API server would (count and all). */
function eventSink() {
  const events = new Map<string, KObject>();
  const client = {
    create: async (_rt: unknown, obj: KObject) => {
      events.set(obj.metadata.name!, structuredClone(obj));
      return obj;
    },
    patch: async (_rt: unknown, _ns: string, name: string, patch: { count: number }) => {
      Object.assign(events.get(name)!, patch);
      return {};
    },
  } as unknown as KubeClient;
  return { client, events };
}

/** Lets the recorder send what it queued (it waits for the next turn of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

test("a pull in back-off records kubelet's BackOff and Failed Events, repeats counted up", async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const { client, events } = eventSink();
  const recorder = new EventRecorder(client, 'kubelet', 'n1');
  const images = {
    getImage: async () => undefined,
    pullImage: async () => {
      throw new RuntimeError('ErrImagePull', 'manifest unknown');
    },
  } as unknown as ImageService;
  const worker = workerWith(refusingRuntime([]), images, recorder);
  const image = 'localhost:5000/missing:1';
  const p = pod([{ image }]);

  // Syncs every 10 s for a minute, as the agent's requeue does: pulls at 0, 10 and 30 s
  // (the back-off doubles), in back-off at 20, 40, 50 and 60 s.
  for (let ms = 0; ms <= 60_000; ms += 10_000) {
    await worker.sync(p, [sandbox], []);
    await settle();
    t.mock.timers.tick(10_000);
  }
  const got = [...events.values()].map((e) => `${e.type} ${e.reason} x${e.count}: ${e.message}`);
  assert.deepEqual(got.sort(), [
    `Normal BackOff x4: Back-off pulling image "${image}"`,
    `Normal Pulling x3: Pulling image "${image}"`,
    `Warning Failed x3: Error: ErrImagePull`,
    `Warning Failed x3: Failed to pull image "${image}": manifest unknown`,
    `Warning Failed x4: Error: ImagePullBackOff`,
  ]);
});

test('an image that cannot be had without a pull also fails the start with "Error: REASON"', async () => {
  const cases = [
    {
      name: 'Never, not present',
      container: { image: 'busybox:1', imagePullPolicy: 'Never' as const },
      getImage: async () => undefined,
      want: [
        'Warning ErrImageNeverPull: Container image "busybox:1" is not present with pull policy of Never',
        'Warning Failed: Error: ErrImageNeverPull',
      ],
    },
    {
      name: 'invalid name',
      container: { image: 'Bad//Name' },
      getImage: async () => {
        throw new RuntimeError('InvalidImageName', 'invalid image reference "Bad//Name": bad');
      },
      want: [
        'Warning InspectFailed: invalid image reference "Bad//Name": bad',
        'Warning Failed: Error: InvalidImageName',
      ],
    },
  ];
  for (const c of cases) {
    const got: string[] = [];
    const events = {
      normal: (_o: unknown, reason: string, message: string) =>
        got.push(`Normal ${reason}: ${message}`),
      warning: (_o: unknown, reason: string, message: string) =>
        got.push(`Warning ${reason}: ${message}`),
    } as unknown as EventRecorder;
    const images = { getImage: c.getImage } as unknown as ImageService;
    const worker = workerWith(refusingRuntime([]), images, events);
    await worker.sync(pod([c.container]), [sandbox], []);
    assert.deepEqual(got, c.want, c.name);
  }
});

test('imagePullSecrets that give no credentials are named with why, never with a value', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const password = 'pa55-w0rd-in-a-secret';
  const config = { auths: { 'r.test': { username: 'u', password } } };
  const secrets: Record<string, Record<string, string>> = {
    good: { '.dockerconfigjson': b64(JSON.stringify(config)) },
    opaque: { token: b64(password) },
    broken: { '.dockerconfigjson': b64(`{"auths": ${password}`) },
  };
  const secret = (_ns: string, name: string) =>
    secrets[name] && ({ metadata: { name }, data: secrets[name] } as Secret);
  const p = pod([{}]);
  p.spec.imagePullSecrets = ['nosuch', 'good', 'opaque', 'broken'].map((name) => ({ name }));
  const got = pullSecrets(p, { source: { configMap: () => undefined, secret } });
  assert.deepEqual(got.auth, [{ registry: 'r.test', username: 'u', password }]);
  assert.deepEqual(got.unusable, [
    '"nosuch" not found',
    '"opaque" has no .dockerconfigjson',
    '"broken" has no valid .dockerconfigjson',
  ]);
});

test("a container the runtime lost counts its restarts on from the pod's last status", async () => {
  const attempts: number[] = [];
  const runtime = {
    listContainers: async () => [],
    createContainer: async (_sandbox: string, config: { attempt: number }) => {
      attempts.push(config.attempt);
      throw new RuntimeError('CreateContainerError', 'stop here');
    },
  } as unknown as RuntimeService;
  const worker = workerWith(runtime);
  const shown = (restartCount: number, containerID?: string) =>
    ({
      ...pod([{ name: 'c', command: ['sleep', '1'] }]),
      status: {
        containerStatuses: [{ name: 'c', restartCount, ...(containerID ? { containerID } : {}) }],
      },
    }) as Pod;
  // It ran 5 times before `flyces down` removed it: its next start is the sixth restart.
  await worker.sync(shown(5, 'minic://abc'), [sandbox], []);
  // Never created (no container named): it starts at 0.
  await worker.sync(
    { ...shown(0), metadata: { ...shown(0).metadata, uid: 'v' } },
    [{ ...sandbox, podUid: 'v' }],
    [],
  );
  assert.deepEqual(attempts, [6, 0]);
});

/**
 * A runtime whose containers are created and then fail to start, recorded as exited with
 * 128 (StartError), as miniC records them.
 */
function failingStartRuntime(): RuntimeService {
  const made: ContainerStatus[] = [];
  return {
    listContainers: async () => made.map((c) => ({ ...c })),
    createContainer: async (sandboxId: string, config: { name: string; image: string }) => {
      const id = `c${made.length}`;
      made.push({
        id,
        sandboxId,
        name: config.name,
        image: config.image,
        imageId: 'sha256:i',
        attempt: made.length,
        labels: {},
        state: 'created',
        createdAt: '2026-01-01T00:00:00Z',
        logPath: '/dev/null',
      });
      return id;
    },
    startContainer: async (id: string) => {
      const c = made.find((x) => x.id === id)!;
      Object.assign(c, { state: 'exited', exitCode: 128, reason: 'StartError' });
      Object.assign(c, { message: 'exec: "nope": not found', finishedAt: '2026-01-01T00:00:01Z' });
      throw new RuntimeError('RunContainerError', 'exec: "nope": not found');
    },
  } as unknown as RuntimeService;
}

test('a container that fails to start under restartPolicy Never is terminated, as kubelet shows it', async () => {
  const cases: [string, Pod['spec']['restartPolicy'], string, string | undefined][] = [
    ['Never', 'Never', 'Failed', 'StartError'],
    ['OnFailure', 'OnFailure', 'Running', undefined],
    ['Always', 'Always', 'Running', undefined],
  ];
  for (const [name, policy, phase, terminated] of cases) {
    const worker = workerWith(failingStartRuntime());
    const p = pod([{ command: ['nope'] }]);
    p.spec.restartPolicy = policy;
    const { status } = await worker.sync(p, [sandbox], []);
    const s = status!.containerStatuses![0];
    assert.equal(status!.phase, phase, name);
    assert.equal(s.state.terminated?.reason, terminated, name);
    if (terminated) {
      assert.equal(s.state.terminated?.exitCode, 128, name);
      assert.deepEqual(s.lastState, {}, name);
    } else {
      assert.equal(s.state.waiting?.reason, 'RunContainerError', name);
      assert.equal(s.lastState.terminated?.reason, 'StartError', name);
    }
  }
});

test('a memory limit reaches the runtime in whole bytes, rounded up', async () => {
  const cases: [string, number][] = [
    ['64Mi', 64 * 2 ** 20],
    ['1e3', 1000],
    ['1500m', 2],
    ['100m', 1],
  ];
  for (const [memory, want] of cases) {
    const p = pod([{ resources: { limits: { memory } } }]);
    const config = await containerConfig(p, p.spec.containers[0], 0, {
      source: { configMap: () => undefined, secret: () => undefined },
    });
    assert.equal(config.resources?.memoryLimitBytes, want, memory);
  }
});

test("a sandbox's names: spec.hostname over the pod's name, a subdomain's FQDN, hostAliases", () => {
  const p = pod([{}]);
  assert.deepEqual(hostNames(p), { hostname: 'p' });
  const named = {
    ...p,
    spec: {
      ...p.spec,
      hostname: 'web-0',
      subdomain: 'web',
      hostAliases: [{ ip: '10.1.2.3', hostnames: ['db'] }, { ip: '10.1.2.4' }],
    },
  } as Pod;
  assert.deepEqual(hostNames(named, 'example.org.'), {
    hostname: 'web-0',
    fqdn: 'web-0.web.default.svc.example.org',
    hostAliases: [
      { ip: '10.1.2.3', hostnames: ['db'] },
      { ip: '10.1.2.4', hostnames: [] },
    ],
  });
  const long = { ...p, metadata: { ...p.metadata, name: 'x'.repeat(70) } } as Pod;
  assert.equal(hostNames(long).hostname, 'x'.repeat(63));
});
