import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../api/types.js';
import type { ContainerStatus } from '../runtime/runtime.js';
import { computePodStatus, type Waiting } from './pod-status.js';

function pod(restartPolicy: 'Always' | 'OnFailure' | 'Never', names = ['a']): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u' },
    spec: { restartPolicy, containers: names.map((name) => ({ name, image: 'img' })) },
  };
}

function instance(
  name: string,
  attempt: number,
  state: ContainerStatus['state'],
  exitCode?: number,
): ContainerStatus {
  return {
    id: `${name}-${attempt}`,
    sandboxId: 's',
    name,
    image: 'img',
    imageId: 'sha256:x',
    attempt,
    labels: {},
    state,
    createdAt: '2026-01-01T00:00:00Z',
    startedAt: '2026-01-01T00:00:01Z',
    finishedAt: state === 'exited' ? '2026-01-01T00:00:02Z' : undefined,
    exitCode,
    logPath: '/dev/null',
  };
}

test('pod phase, readiness and container states', () => {
  const cases: {
    name: string;
    pod: Pod;
    containers: ContainerStatus[];
    waiting?: Record<string, Waiting>;
    phase: string;
    ready: boolean;
    restarts?: number;
    state?: string;
  }[] = [
    {
      name: 'nothing started yet',
      pod: pod('Always'),
      containers: [],
      phase: 'Pending',
      ready: false,
      state: 'ContainerCreating',
    },
    {
      name: 'running',
      pod: pod('Always'),
      containers: [instance('a', 0, 'running')],
      phase: 'Running',
      ready: true,
    },
    {
      name: 'crash loop keeps Running with the back-off reason',
      pod: pod('Always'),
      containers: [instance('a', 2, 'exited', 1), instance('a', 1, 'exited', 1)],
      waiting: { a: { reason: 'CrashLoopBackOff' } },
      phase: 'Running',
      ready: false,
      restarts: 2,
      state: 'CrashLoopBackOff',
    },
    {
      name: 'never: failure is final',
      pod: pod('Never'),
      containers: [instance('a', 0, 'exited', 2)],
      phase: 'Failed',
      ready: false,
    },
    {
      name: 'never: success',
      pod: pod('Never'),
      containers: [instance('a', 0, 'exited', 0)],
      phase: 'Succeeded',
      ready: false,
    },
    {
      name: 'on failure: success ends it',
      pod: pod('OnFailure'),
      containers: [instance('a', 0, 'exited', 0)],
      phase: 'Succeeded',
      ready: false,
    },
    {
      name: 'one of two containers still waiting',
      pod: pod('Always', ['a', 'b']),
      containers: [instance('a', 0, 'running')],
      waiting: { b: { reason: 'ErrImageNeverPull', message: 'missing' } },
      phase: 'Pending',
      ready: false,
    },
  ];
  for (const c of cases) {
    const status = computePodStatus({
      pod: c.pod,
      sandbox: {
        id: 's',
        podUid: 'u',
        podName: 'p',
        podNamespace: 'default',
        labels: {},
        state: 'ready',
        ip: '10.0.0.2',
        createdAt: '',
      },
      containers: c.containers,
      waiting: new Map(Object.entries(c.waiting ?? {})),
      hostIP: '127.0.0.1',
      now: '2026-01-01T00:00:03Z',
    });
    assert.equal(status.phase, c.phase, c.name);
    const ready = status.conditions!.find((x) => x.type === 'Ready')!.status === 'True';
    assert.equal(ready, c.ready, c.name);
    assert.equal(status.podIP, '10.0.0.2');
    if (c.restarts !== undefined)
      assert.equal(status.containerStatuses![0].restartCount, c.restarts, c.name);
    if (c.state) assert.equal(status.containerStatuses![0].state.waiting?.reason, c.state, c.name);
  }
});

test('init containers gate the phase and the Initialized condition', () => {
  const withInit = (restartPolicy: 'Always' | 'Never'): Pod => ({
    ...pod(restartPolicy),
    spec: { ...pod(restartPolicy).spec, initContainers: [{ name: 'i', image: 'img' }] },
  });
  const observe = (p: Pod, containers: ContainerStatus[]) =>
    computePodStatus({ pod: p, containers, waiting: new Map(), hostIP: 'h', now: 'n' });
  const cond = (s: ReturnType<typeof observe>) =>
    s.conditions!.find((c) => c.type === 'Initialized')!.status;

  const running = observe(withInit('Always'), [instance('i', 0, 'running')]);
  assert.equal(running.phase, 'Pending');
  assert.equal(cond(running), 'False');
  const failed = observe(withInit('Never'), [instance('i', 0, 'exited', 1)]);
  assert.equal(failed.phase, 'Failed');
  const done = observe(withInit('Always'), [
    instance('i', 0, 'exited', 0),
    instance('a', 0, 'running'),
  ]);
  assert.equal(done.phase, 'Running');
  assert.equal(cond(done), 'True');
  assert.equal(done.initContainerStatuses![0].ready, true);
});

test('containers that never ran wait with PodInitializing in a pod with init containers', () => {
  const p: Pod = {
    ...pod('Always', ['a', 'b']),
    spec: {
      ...pod('Always', ['a', 'b']).spec,
      initContainers: [
        { name: 'i1', image: 'img' },
        { name: 'i2', image: 'img' },
      ],
    },
  };
  const reasons = (s: ReturnType<typeof computePodStatus>) => [
    ...(s.initContainerStatuses ?? []).map((c) => c.state.waiting?.reason ?? 'not waiting'),
    ...(s.containerStatuses ?? []).map((c) => c.state.waiting?.reason ?? 'not waiting'),
  ];
  const cases: { name: string; containers: ContainerStatus[]; want: string[] }[] = [
    {
      name: 'before anything started (the status reported while images are pulled)',
      containers: [],
      want: ['PodInitializing', 'PodInitializing', 'PodInitializing', 'PodInitializing'],
    },
    {
      // What the agent reports once activeDeadlineSeconds stopped the first init container.
      name: 'the first init container killed',
      containers: [instance('i1', 0, 'exited', 137)],
      want: ['not waiting', 'PodInitializing', 'PodInitializing', 'PodInitializing'],
    },
  ];
  for (const c of cases) {
    const status = computePodStatus({
      pod: p,
      containers: c.containers,
      waiting: new Map(),
      hostIP: 'h',
      now: 'n',
    });
    assert.deepEqual(reasons(status), c.want, c.name);
  }
  const plain = computePodStatus({
    pod: pod('Always'),
    containers: [],
    waiting: new Map(),
    hostIP: 'h',
    now: 'n',
  });
  assert.equal(plain.containerStatuses![0].state.waiting?.reason, 'ContainerCreating');
});

test("container times are the API's: whole seconds", () => {
  const running = { ...instance('a', 1, 'running'), startedAt: '2026-01-01T00:00:01.999Z' };
  const exited = {
    ...instance('a', 0, 'exited', 0),
    startedAt: '2026-01-01T00:00:00.500Z',
    finishedAt: '2026-01-01T00:00:00.900Z',
  };
  const status = computePodStatus({
    pod: pod('Always'),
    containers: [running, exited],
    waiting: new Map(),
    hostIP: '10.0.0.1',
    now: '2026-01-01T00:00:03Z',
  });
  const [s] = status.containerStatuses!;
  assert.deepEqual(s.state, { running: { startedAt: '2026-01-01T00:00:01Z' } });
  const last = s.lastState.terminated!;
  assert.equal(last.startedAt, '2026-01-01T00:00:00Z');
  assert.equal(last.finishedAt, '2026-01-01T00:00:00Z');
});

test('a deleted pod whose containers stopped is Succeeded or Failed, whatever its policy', () => {
  const phaseOf = (p: Pod, containers: ContainerStatus[]) =>
    computePodStatus({
      pod: p,
      containers,
      waiting: new Map(),
      hostIP: 'h',
      now: 'n',
      deleted: true,
    }).phase;
  const both = pod('Always', ['a', 'b']);
  assert.equal(
    phaseOf(both, [instance('a', 0, 'exited', 0), instance('b', 0, 'exited', 0)]),
    'Succeeded',
  );
  assert.equal(
    phaseOf(both, [instance('a', 0, 'exited', 0), instance('b', 0, 'exited', 137)]),
    'Failed',
  );
  // One that never started did not succeed.
  assert.equal(phaseOf(both, [instance('a', 0, 'exited', 0)]), 'Failed');
  // Without the mark, the same containers under Always are Running (about to restart).
  const live = computePodStatus({
    pod: both,
    containers: [instance('a', 0, 'exited', 0), instance('b', 0, 'exited', 0)],
    waiting: new Map(),
    hostIP: 'h',
    now: 'n',
  });
  assert.equal(live.phase, 'Running');
});
