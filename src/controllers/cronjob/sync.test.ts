import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CronJob, Job } from '../../api/batch.js';
import { jobNameFor, jobsToPrune, planCronJob } from './sync.js';

const T = (iso: string) => Date.parse(iso);

function cronJob(spec: Partial<CronJob['spec']> = {}, status: CronJob['status'] = {}): CronJob {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: 'cj',
      namespace: 'default',
      uid: 'cj-uid',
      creationTimestamp: '2026-06-01T10:00:30Z',
    },
    spec: {
      schedule: '*/10 * * * *',
      timeZone: 'UTC',
      concurrencyPolicy: 'Allow',
      jobTemplate: { spec: { template: { spec: { containers: [] } } } },
      ...spec,
    },
    status,
  };
}

function job(name: string, result?: 'Complete' | 'Failed', start = '2026-06-01T10:00:00Z'): Job {
  const conditions = result ? [{ type: result, status: 'True' as const }] : [];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: { template: { spec: { containers: [] } } },
    status: {
      startTime: start,
      conditions,
      ...(result === 'Complete' ? { completionTime: start } : {}),
    },
  };
}

const ref = (name: string) => ({ kind: 'Job', name, uid: `uid-${name}` });

test('runs start at scheduled times, named by minutes since the epoch', () => {
  const cases: [string, CronJob, number, string | undefined][] = [
    ['not yet due', cronJob(), T('2026-06-01T10:09:59Z'), undefined],
    ['due', cronJob(), T('2026-06-01T10:10:05Z'), '2026-06-01T10:10:00.000Z'],
    [
      'already ran',
      cronJob({}, { lastScheduleTime: '2026-06-01T10:10:00Z' }),
      T('2026-06-01T10:15:00Z'),
      undefined,
    ],
    [
      'missed several: only the latest',
      cronJob({}, { lastScheduleTime: '2026-06-01T10:10:00Z' }),
      T('2026-06-01T11:05:00Z'),
      '2026-06-01T11:00:00.000Z',
    ],
    [
      'outside startingDeadlineSeconds',
      cronJob({ startingDeadlineSeconds: 30 }),
      T('2026-06-01T10:10:45Z'),
      undefined,
    ],
    [
      'inside startingDeadlineSeconds',
      cronJob({ startingDeadlineSeconds: 60 }),
      T('2026-06-01T10:10:45Z'),
      '2026-06-01T10:10:00.000Z',
    ],
    ['suspended', cronJob({ suspend: true }), T('2026-06-01T10:10:05Z'), undefined],
    ['unparseable', cronJob({ schedule: 'never' }), T('2026-06-01T10:10:05Z'), undefined],
  ];
  for (const [name, cj, now, want] of cases) {
    const plan = planCronJob(cj, [], now);
    const got = plan.start ? new Date(plan.start.scheduledAt).toISOString() : undefined;
    assert.equal(got, want, name);
    if (plan.start) {
      assert.equal(plan.start.name, `cj-${plan.start.scheduledAt / 60_000}`, name);
      assert.equal(plan.status.lastScheduleTime, want!.replace('.000', ''), name);
    }
  }
  assert.equal(jobNameFor(cronJob(), T('2026-06-01T10:10:00Z')), 'cj-29671810');
});

test('it looks again when the next run is due, not before', () => {
  const plan = planCronJob(cronJob(), [], T('2026-06-01T10:12:30Z'));
  assert.equal(plan.requeueMs, 7.5 * 60_000 + 100);
  assert.equal(
    planCronJob(cronJob({ suspend: true }), [], T('2026-06-01T10:12:30Z')).requeueMs,
    undefined,
  );
});

test('more than 100 missed start times are reported, and the latest still runs', () => {
  const cj = cronJob({ schedule: '* * * * *' }, { lastScheduleTime: '2026-06-01T10:00:00Z' });
  const plan = planCronJob(cj, [], T('2026-06-01T12:00:30Z'));
  assert.ok(plan.events.some((e) => e.reason === 'TooManyMissedTimes'));
  assert.equal(plan.start?.scheduledAt, T('2026-06-01T12:00:00Z'));
  const few = planCronJob(cj, [], T('2026-06-01T11:30:30Z'));
  assert.ok(!few.events.some((e) => e.reason === 'TooManyMissedTimes'));
});

test('concurrency policies', () => {
  const now = T('2026-06-01T10:20:05Z');
  const status = { active: [ref('cj-1')], lastScheduleTime: '2026-06-01T10:10:00Z' };
  const running = [job('cj-1')];
  const allow = planCronJob(cronJob({}, status), running, now);
  assert.ok(allow.start);
  assert.deepEqual(allow.replace, []);
  const forbid = planCronJob(cronJob({ concurrencyPolicy: 'Forbid' }, status), running, now);
  assert.equal(forbid.start, undefined);
  assert.equal(forbid.status.lastScheduleTime, status.lastScheduleTime);
  const replace = planCronJob(cronJob({ concurrencyPolicy: 'Replace' }, status), running, now);
  assert.ok(replace.start);
  assert.deepEqual(
    replace.replace.map((r) => r.name),
    ['cj-1'],
  );
});

test('status.active follows the jobs: finished and missing ones leave, unlisted ones join', () => {
  const now = T('2026-06-01T10:05:00Z');
  const cj = cronJob({}, { active: [ref('done'), ref('gone'), ref('running')] });
  const unlisted = job('unlisted');
  unlisted.metadata.annotations = {
    'batch.kubernetes.io/cronjob-scheduled-timestamp': '2026-06-01T10:00:00Z',
  };
  const plan = planCronJob(cj, [job('done', 'Complete'), job('running'), unlisted], now);
  assert.deepEqual(
    plan.status.active?.map((r) => r.name),
    ['running', 'unlisted'],
  );
  assert.equal(plan.status.lastSuccessfulTime, '2026-06-01T10:00:00Z');
  assert.equal(plan.status.lastScheduleTime, '2026-06-01T10:00:00Z');
  assert.equal(plan.start, undefined, 'the unlisted run is not started again');
  const reasons = plan.events.map((e) => e.reason).sort();
  assert.deepEqual(reasons, ['MissingJob', 'SawCompletedJob']);
});

test('history limits prune the oldest finished jobs of each kind', () => {
  const jobs = [
    job('ok-1', 'Complete', '2026-06-01T10:00:00Z'),
    job('ok-3', 'Complete', '2026-06-01T10:20:00Z'),
    job('ok-2', 'Complete', '2026-06-01T10:10:00Z'),
    job('bad-1', 'Failed', '2026-06-01T10:05:00Z'),
    job('bad-2', 'Failed', '2026-06-01T10:15:00Z'),
    job('running', undefined, '2026-06-01T09:00:00Z'),
  ];
  const cases: [number, number, string[]][] = [
    [3, 1, ['bad-1']],
    [1, 1, ['ok-1', 'ok-2', 'bad-1']],
    [0, 0, ['ok-1', 'ok-2', 'ok-3', 'bad-1', 'bad-2']],
    [5, 5, []],
  ];
  for (const [ok, failed, want] of cases) {
    const cj = cronJob({ successfulJobsHistoryLimit: ok, failedJobsHistoryLimit: failed });
    assert.deepEqual(
      jobsToPrune(cj, jobs).map((j) => j.metadata.name),
      want,
      `${ok}/${failed}`,
    );
  }
});

test('a run whose Job exists but whose status write was lost is not started again', () => {
  const now = T('2026-06-01T10:10:05Z');
  const unlisted = job('cj-29671810');
  unlisted.metadata.annotations = {
    'batch.kubernetes.io/cronjob-scheduled-timestamp': '2026-06-01T10:10:00Z',
  };
  for (const policy of ['Allow', 'Forbid', 'Replace'] as const) {
    const plan = planCronJob(cronJob({ concurrencyPolicy: policy }), [unlisted], now);
    assert.equal(plan.start, undefined, policy);
    assert.deepEqual(plan.replace, [], policy);
    assert.deepEqual(
      plan.status.active?.map((r) => r.name),
      ['cj-29671810'],
      policy,
    );
    assert.equal(plan.status.lastScheduleTime, '2026-06-01T10:10:00Z', policy);
  }
});

test('jobs started within the same second are aged by their scheduled time', () => {
  const at = '2026-06-01T10:00:00Z';
  const late = job('cj-b', 'Complete', at);
  late.metadata.annotations = { 'batch.kubernetes.io/cronjob-scheduled-timestamp': at };
  const early = job('cj-c', 'Complete', at);
  early.metadata.annotations = {
    'batch.kubernetes.io/cronjob-scheduled-timestamp': '2026-06-01T09:59:00Z',
  };
  const cj = cronJob({ successfulJobsHistoryLimit: 1 });
  assert.deepEqual(
    jobsToPrune(cj, [late, early]).map((j) => j.metadata.name),
    ['cj-c'],
  );
});
