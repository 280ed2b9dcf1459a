import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JOB_TRACKING_FINALIZER, type Job, type JobStatus } from '../../api/batch.js';
import type { Pod } from '../../api/types.js';
import { formatIndexes, parseIndexes, planJob, type JobSyncInput } from './sync.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');

function job(spec: Partial<Job['spec']> = {}, status: JobStatus = {}): Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'j', namespace: 'default', uid: 'job-uid' },
    spec: {
      parallelism: 1,
      completions: 1,
      backoffLimit: 6,
      completionMode: 'NonIndexed',
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } },
      ...spec,
    },
    status: { startTime: '2026-06-01T11:59:00Z', ...status },
  };
}

interface PodOpts {
  phase?: string;
  tracked?: boolean;
  deleting?: boolean;
  restarts?: number;
  index?: number;
}

function pod(uid: string, o: PodOpts = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `p-${uid}`,
      namespace: 'default',
      uid,
      finalizers: o.tracked === false ? undefined : [JOB_TRACKING_FINALIZER],
      ...(o.deleting ? { deletionTimestamp: '2026-06-01T11:59:30Z' } : {}),
      ...(o.index !== undefined
        ? { annotations: { 'batch.kubernetes.io/job-completion-index': String(o.index) } }
        : {}),
    },
    spec: { containers: [{ name: 'c', image: 'i' }] },
    status: {
      phase: (o.phase ?? 'Running') as 'Running',
      containerStatuses: [
        {
          name: 'c',
          ready: true,
          restartCount: o.restarts ?? 0,
          image: 'i',
          imageID: '',
          state: {},
          lastState: {},
        },
      ],
    },
  };
}

function plan(j: Job, pods: Pod[], extra: Partial<JobSyncInput> = {}) {
  return planJob({
    job: j,
    pods,
    now: NOW,
    backoffBaseMs: 10_000,
    backoffMaxMs: 600_000,
    ...extra,
  });
}

test('pods to create: min(parallelism, completions - succeeded) minus active', () => {
  const cases: [string, Job, Pod[], number][] = [
    ['fresh job', job({ parallelism: 2, completions: 5 }), [], 2],
    ['one running', job({ parallelism: 2, completions: 5 }), [pod('a')], 1],
    ['near the end', job({ parallelism: 3, completions: 5 }, { succeeded: 4 }), [], 1],
    ['work queue, nothing done', job({ parallelism: 3, completions: undefined }), [], 3],
    [
      'work queue, one succeeded',
      job({ parallelism: 3, completions: undefined }, { succeeded: 1 }),
      [pod('a')],
      0,
    ],
    ['parallelism 0', job({ parallelism: 0, completions: 5 }), [], 0],
  ];
  for (const [name, j, pods, want] of cases) {
    const p = plan(j, pods);
    assert.equal(p.create, want, name);
    assert.equal(p.finished, undefined, name);
  }
});

test('extra active pods are deleted when parallelism drops', () => {
  const p = plan(job({ parallelism: 1, completions: 5 }), [pod('a'), pod('b'), pod('c')]);
  assert.equal(p.remove.length, 2);
  assert.equal(p.create, 0);
});

test('finished pods are recorded as uncounted, then counted once their finalizer is gone', () => {
  const j = job({ parallelism: 2, completions: 3 });
  const first = plan(j, [pod('a', { phase: 'Succeeded' }), pod('b', { phase: 'Failed' })]);
  assert.deepEqual(first.status.uncountedTerminatedPods, { succeeded: ['a'], failed: ['b'] });
  assert.equal(first.status.succeeded, 0);
  assert.equal(first.status.failed, 0);
  assert.deepEqual(
    first.untrack.map((p) => p.metadata.uid),
    ['a', 'b'],
  );
  // The pods hold the finalizer still: nothing more is counted, nothing double counted.
  const again = plan({ ...j, status: first.status }, [
    pod('a', { phase: 'Succeeded' }),
    pod('b', { phase: 'Failed' }),
  ]);
  assert.deepEqual(again.status, first.status);
  // Finalizers removed (one pod even deleted): the uids become counts.
  const settled = plan({ ...j, status: first.status }, [
    pod('a', { phase: 'Succeeded', tracked: false }),
  ]);
  assert.equal(settled.status.succeeded, 1);
  assert.equal(settled.status.failed, 1);
  assert.deepEqual(settled.status.uncountedTerminatedPods, {});
  assert.deepEqual(settled.untrack, []);
  // Pods without the finalizer are never counted again.
  const later = plan({ ...j, status: settled.status }, [
    pod('a', { phase: 'Succeeded', tracked: false }),
  ]);
  assert.equal(later.status.succeeded, 1);
  assert.equal(later.status.failed, 1);
});

test('a pod deleted before it finished counts as failed', () => {
  const p = plan(job(), [pod('a', { deleting: true })]);
  assert.deepEqual(p.status.uncountedTerminatedPods, { failed: ['a'] });
  assert.equal(p.status.active, 0);
});

test('the job completes when enough pods succeeded', () => {
  const j = job({ parallelism: 2, completions: 2 }, { succeeded: 1 });
  const p = plan(j, [pod('a', { phase: 'Succeeded' }), pod('b')]);
  assert.equal(p.finished?.type, 'Complete');
  assert.ok(p.status.completionTime);
  assert.equal(p.create, 0);
  const complete = p.status.conditions?.find((c) => c.type === 'Complete');
  assert.equal(complete?.status, 'True');
});

test('failure decisions: backoff limit, restarts with OnFailure, active deadline', () => {
  const onFailure = (spec: Partial<Job['spec']>) => {
    const j = job(spec);
    j.spec.template.spec.restartPolicy = 'OnFailure';
    return j;
  };
  const cases: [string, Job, Pod[], string | undefined][] = [
    ['failed = limit', job({ backoffLimit: 2 }, { failed: 2 }), [pod('a')], undefined],
    [
      'failed > limit',
      job({ backoffLimit: 2 }, { failed: 2 }),
      [pod('a', { phase: 'Failed' })],
      'BackoffLimitExceeded',
    ],
    [
      'limit 0, one failure',
      job({ backoffLimit: 0 }),
      [pod('a', { phase: 'Failed' })],
      'BackoffLimitExceeded',
    ],
    [
      'OnFailure, restarts below',
      onFailure({ backoffLimit: 3 }),
      [pod('a', { restarts: 2 })],
      undefined,
    ],
    [
      'OnFailure, restarts reach',
      onFailure({ backoffLimit: 3 }),
      [pod('a', { restarts: 3 })],
      'BackoffLimitExceeded',
    ],
    [
      'OnFailure, limit 0',
      onFailure({ backoffLimit: 0 }),
      [pod('a', { restarts: 1 })],
      'BackoffLimitExceeded',
    ],
    ['Never ignores restarts', job({ backoffLimit: 1 }), [pod('a', { restarts: 5 })], undefined],
    ['deadline not yet', job({ activeDeadlineSeconds: 61 }), [pod('a')], undefined],
    ['deadline passed', job({ activeDeadlineSeconds: 60 }), [pod('a')], 'DeadlineExceeded'],
  ];
  for (const [name, j, pods, want] of cases) {
    const p = plan(j, pods);
    assert.equal(p.finished?.reason, want, name);
    if (want) {
      assert.equal(p.finished?.type, 'Failed', name);
      assert.deepEqual(
        p.remove.map((x) => x.metadata.uid),
        pods.filter((x) => x.status?.phase === 'Running').map((x) => x.metadata.uid),
        name,
      );
      assert.equal(p.status.completionTime, undefined, name);
    }
  }
});

test('deadline requeue and failed-pod backoff', () => {
  const p = plan(job({ activeDeadlineSeconds: 120 }), [pod('a')]);
  assert.equal(p.requeueMs, 60_000 + 10);
  // A new failure delays the replacement: 10 s after the first, 20 s after the second.
  const first = plan(job({ backoffLimit: 6 }), [pod('a', { phase: 'Failed' })]);
  assert.equal(first.create, 0);
  assert.equal(first.requeueMs, 10_000);
  const second = plan(job({ backoffLimit: 6 }, { failed: 2 }), [], { lastFailureAt: NOW - 15_000 });
  assert.equal(second.create, 0);
  assert.equal(second.requeueMs, 5_000);
  const failedPod = pod('f', { phase: 'Failed', tracked: false });
  failedPod.status!.containerStatuses![0].state = {
    terminated: { exitCode: 1, finishedAt: '2026-06-01T11:59:55Z' },
  };
  const fromPod = plan(job({ backoffLimit: 6 }, { failed: 2 }), [failedPod]);
  assert.equal(fromPod.create, 0, 'the failed pod says when it failed');
  assert.equal(fromPod.requeueMs, 15_000);
  const due = plan(job({ backoffLimit: 6 }, { failed: 2 }), [], { lastFailureAt: NOW - 20_000 });
  assert.equal(due.create, 1);
});

test('suspend removes active pods without counting them; resume restarts the clock', () => {
  const suspended = plan(job({ suspend: true, parallelism: 2, completions: 2 }), [
    pod('a'),
    pod('b'),
  ]);
  assert.equal(suspended.suspended, true);
  assert.equal(suspended.remove.length, 2);
  assert.equal(suspended.create, 0);
  const deleted = plan(job({ suspend: true }, { conditions: suspended.status.conditions }), [
    pod('a', { deleting: true }),
  ]);
  assert.deepEqual(deleted.status.uncountedTerminatedPods, {});
  assert.equal(deleted.untrack.length, 1, 'the finalizer still goes');
  const resumed = plan(job({}, { conditions: suspended.status.conditions }), []);
  assert.equal(resumed.suspended, false);
  assert.equal(resumed.status.startTime, '2026-06-01T12:00:00Z');
  assert.equal(resumed.create, 1);
});

test('a finished job only deletes leftovers and settles counts', () => {
  const conditions = [{ type: 'Complete', status: 'True' as const }];
  const p = plan(job({}, { conditions, succeeded: 1 }), [
    pod('a', { phase: 'Succeeded', tracked: false }),
    pod('b'),
  ]);
  assert.equal(p.create, 0);
  assert.deepEqual(
    p.remove.map((x) => x.metadata.uid),
    ['b'],
  );
  assert.equal(p.finished, undefined);
});

test('indexed jobs create the missing indexes and track completed ones', () => {
  const spec = { completionMode: 'Indexed' as const, completions: 5, parallelism: 3 };
  const fresh = plan(job(spec), []);
  assert.deepEqual(fresh.indexes, [0, 1, 2]);
  const running = plan(job(spec, { completedIndexes: '0' }), [
    pod('a', { index: 1, phase: 'Succeeded' }),
    pod('b', { index: 2 }),
    pod('c', { index: 2 }),
  ]);
  assert.equal(running.status.completedIndexes, '0-1');
  assert.equal(running.status.succeeded, 2);
  assert.equal(running.remove.length, 1, 'a second pod for index 2 goes');
  assert.deepEqual(running.indexes, [], 'deletions first, creations next time');
  const next = plan(job(spec, { completedIndexes: '0-1' }), [pod('b', { index: 2 })]);
  assert.deepEqual(next.indexes, [3, 4]);
  const done = plan(job(spec, { completedIndexes: '0-3' }), [
    pod('e', { index: 4, phase: 'Succeeded' }),
  ]);
  assert.equal(done.finished?.type, 'Complete');
  assert.equal(done.status.completedIndexes, '0-4');
});

test('index intervals', () => {
  const cases: [number[], string][] = [
    [[], ''],
    [[0], '0'],
    [[0, 1, 2], '0-2'],
    [[5, 1, 2, 3, 9, 7, 8], '1-3,5,7-9'],
  ];
  for (const [list, text] of cases) {
    assert.equal(formatIndexes(list), text);
    assert.deepEqual(
      parseIndexes(text),
      [...new Set(list)].sort((a, b) => a - b),
    );
  }
});
