import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { JOB_TRACKING_FINALIZER, jobCondition, type CronJob, type Job } from '../src/api/batch.js';
import { byGroupResource } from '../src/api/resources.js';
import { controllerOf, nowTimestamp, type KObject, type Pod } from '../src/api/types.js';
import { isReason, type KubeClient } from '../src/client/rest.js';
import { ControllerManager } from '../src/controllers/manager.js';
import { startTestApiServer } from './helpers/apiserver.js';
import {
  kubectlOk,
  PODS,
  sleep,
  startCluster,
  tolerant,
  waiter,
  waitGone,
  type Cluster,
} from './helpers/workload.js';

/**
 * Jobs and CronJobs against a real API server and the controller manager, with no agent:
 * the tests play the kubelet by writing pod status (Running, Succeeded, Failed) themselves.
 * CronJob tests move the controllers' clock instead of waiting for minutes to pass.
 */

const JOBS = byGroupResource.get('batch/jobs')!;
const CRONJOBS = byGroupResource.get('batch/cronjobs')!;
const EVENTS = byGroupResource.get('/events')!;

/** These tests give up after 15 s, sooner than the other workload tests. */
const waitFor = waiter(15_000);

interface Env extends Cluster {
  /** Moves the controllers' clock forward (ms). */
  advance(ms: number): void;
}

async function setup(t: TestContext): Promise<Env> {
  // The controllers' clock is the wall clock moved by advance(): a test that began in the
  // last seconds of a minute could see the wall clock carry it into the next one and shift
  // which run is due, so such a test waits for the minute to turn first.
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await sleep(61_000 - intoMinute);
  let offset = 0;
  const c = await startCluster(t, {
    controllers: ['job', 'cronjob', 'garbage-collector'],
    clock: () => Date.now() + offset,
    jobBackoffBaseMs: 20,
  });
  return { ...c, advance: (ms) => (offset += ms) };
}

function job(name: string, spec: Partial<Job['spec']> = {}, policy = 'Never'): Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default' },
    spec: {
      template: {
        spec: {
          restartPolicy: policy as 'Never',
          containers: [{ name: 'work', image: 'busybox:1.36', command: ['true'] }],
        },
      },
      ...spec,
    },
  };
}

async function podsOf(client: KubeClient, name: string): Promise<Pod[]> {
  const list = await client.list<Pod>(PODS, 'default', { labelSelector: `job-name=${name}` });
  return list.items;
}

/** Waits until Job `name` has exactly `n` pods (terminating ones included); returns them. */
function waitPods(client: KubeClient, name: string, n: number): Promise<Pod[]> {
  return waitFor(`${n} pods of job ${name}`, async () => {
    const pods = await podsOf(client, name);
    return pods.length === n && pods;
  });
}

const isActive = (p: Pod) =>
  !p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';

/** Writes what a kubelet would report for a pod in `phase`; false if the pod changed or went. */
async function report(client: KubeClient, pod: Pod, phase: string, restarts = 0): Promise<boolean> {
  const now = nowTimestamp();
  const exitCode = phase === 'Failed' ? 1 : 0;
  const state =
    phase === 'Running'
      ? { running: { startedAt: now } }
      : { terminated: { exitCode, reason: exitCode ? 'Error' : 'Completed', finishedAt: now } };
  const status = {
    phase,
    conditions: [{ type: 'Ready', status: phase === 'Running' ? 'True' : 'False' }],
    containerStatuses: pod.spec.containers.map((c) => ({
      name: c.name,
      ready: phase === 'Running',
      restartCount: restarts,
      image: c.image,
      imageID: '',
      state,
      lastState: {},
    })),
  };
  return tolerant(client.updateStatus(PODS, { ...pod, status }));
}

async function getJob(client: KubeClient, name: string): Promise<Job> {
  return client.get<Job>(JOBS, 'default', name);
}

async function waitCondition(client: KubeClient, name: string, type: string): Promise<Job> {
  return waitFor(`job ${name} ${type}`, async () => {
    const j = await getJob(client, name);
    return jobCondition(j, type) && j;
  });
}

async function eventReasons(client: KubeClient, obj: KObject): Promise<string[]> {
  const list = await client.list(EVENTS, 'default', {
    fieldSelector: `involvedObject.uid=${obj.metadata.uid}`,
  });
  return list.items.map((e) => e.reason as string);
}

test('DELETE of a pod holding a finalizer only marks it', async (t) => {
  const { client } = await setup(t);
  const pod = job('x').spec.template;
  await client.create(PODS, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'held', namespace: 'default', finalizers: ['example.com/hold'] },
    spec: pod.spec,
  });
  await client.delete(PODS, 'default', 'held');
  const marked = await client.get<Pod>(PODS, 'default', 'held');
  assert.ok(marked.metadata.deletionTimestamp);
  await client.update(PODS, { ...marked, metadata: { ...marked.metadata, finalizers: [] } });
  await assert.rejects(client.get(PODS, 'default', 'held'), (e) => isReason(e, 'NotFound'));
});

test('a job runs completions with at most parallelism pods and completes', async (t) => {
  const { client } = await setup(t);
  const created = await client.create<Job>(JOBS, job('batch', { completions: 5, parallelism: 2 }));
  assert.equal(created.spec.backoffLimit, 6);
  assert.equal(created.spec.completionMode, 'NonIndexed');
  const uid = created.metadata.uid!;
  assert.deepEqual(created.spec.selector, {
    matchLabels: { 'batch.kubernetes.io/controller-uid': uid },
  });
  assert.equal(created.spec.template.metadata?.labels?.['job-name'], 'batch');
  assert.equal(created.spec.template.metadata?.labels?.['controller-uid'], uid);

  let maxActive = 0;
  let finished = 0;
  await waitFor('job batch to complete', async () => {
    const pods = await podsOf(client, 'batch');
    const active = pods.filter(isActive);
    maxActive = Math.max(maxActive, active.length);
    for (const pod of active) {
      assert.ok(pod.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER));
      assert.equal(controllerOf(pod)?.uid, uid);
      if (await report(client, pod, 'Succeeded')) finished++;
    }
    return jobCondition(await getJob(client, 'batch'), 'Complete');
  });
  assert.ok(maxActive <= 2, `at most 2 active pods, saw ${maxActive}`);
  assert.equal(finished, 5, 'exactly completions pods were created');
  const done = await waitFor('counts to settle', async () => {
    const j = await getJob(client, 'batch');
    return j.status?.succeeded === 5 && !j.status.uncountedTerminatedPods?.succeeded && j;
  });
  assert.equal(done.status?.failed, 0);
  assert.equal(done.status?.active, 0);
  assert.ok(done.status?.completionTime && done.status.startTime);
  await waitFor('finalizers to go', async () =>
    (await podsOf(client, 'batch')).every((p) => !p.metadata.finalizers?.length),
  );
  const reasons = await waitFor('events', async () => {
    const r = await eventReasons(client, done);
    return r.includes('Completed') && r;
  });
  assert.equal(reasons.filter((r) => r === 'SuccessfulCreate').length, 5);
});

test('a restarted controller neither duplicates pods nor loses counts', async (t) => {
  const api = await startTestApiServer();
  let manager: ControllerManager | undefined;
  t.after(async () => {
    await manager?.stop();
    await api.stop();
  });
  const client = api.client;
  const start = async () => {
    const m = new ControllerManager(client, { controllers: ['job'], jobBackoffBaseMs: 20 });
    await m.start();
    return m;
  };
  manager = await start();
  await client.create(JOBS, job('again', { completions: 4, parallelism: 2 }));
  const first = await waitPods(client, 'again', 2);
  await report(client, first[0], 'Succeeded');
  await waitPods(client, 'again', 3);
  await manager.stop();

  // While the controller is down a pod finishes; the new one must count it exactly once.
  await report(
    client,
    await client.get<Pod>(PODS, 'default', first[1].metadata.name!),
    'Succeeded',
  );
  manager = await start();
  let created = 0;
  await waitFor('job again to complete', async () => {
    const pods = await podsOf(client, 'again');
    created = Math.max(created, pods.length);
    for (const pod of pods.filter(isActive)) await report(client, pod, 'Succeeded');
    return jobCondition(await getJob(client, 'again'), 'Complete');
  });
  assert.equal(created, 4, 'four pods in all');
  const done = await waitFor('counts', async () => {
    const j = await getJob(client, 'again');
    return !j.status?.uncountedTerminatedPods?.succeeded && j;
  });
  assert.equal(done.status?.succeeded, 4);
});

test('counts survive pods deleted right after they finished', async (t) => {
  const { client } = await setup(t);
  await client.create(JOBS, job('gone', { completions: 3, parallelism: 3 }));
  const pods = await waitPods(client, 'gone', 3);
  for (const pod of pods) {
    await report(client, pod, 'Succeeded');
    await client.delete(PODS, 'default', pod.metadata.name!);
  }
  const done = await waitCondition(client, 'gone', 'Complete');
  await waitFor('succeeded 3', async () => (await getJob(client, 'gone')).status?.succeeded === 3);
  assert.ok(done);
  await waitPods(client, 'gone', 0);
  assert.equal((await getJob(client, 'gone')).status?.failed, 0);
});

test('failed pods are replaced until the backoff limit, then the job fails', async (t) => {
  const { client } = await setup(t);
  await client.create(JOBS, job('flaky', { backoffLimit: 2 }));
  let failures = 0;
  const failed = await waitFor('job flaky to fail', async () => {
    for (const pod of (await podsOf(client, 'flaky')).filter(isActive)) {
      if (await report(client, pod, 'Failed')) failures++;
    }
    const j = await getJob(client, 'flaky');
    return jobCondition(j, 'Failed') && j;
  });
  assert.equal(jobCondition(failed, 'Failed')?.reason, 'BackoffLimitExceeded');
  assert.equal(failures, 3, 'backoffLimit 2 allows three pods');
  await waitFor('failed 3', async () => (await getJob(client, 'flaky')).status?.failed === 3);
  const reasons = await eventReasons(client, failed);
  assert.ok(reasons.includes('BackoffLimitExceeded'));
  await sleep(200);
  assert.equal((await podsOf(client, 'flaky')).length, 3, 'no pod after the job failed');
});

test('with OnFailure, container restarts count toward the backoff limit', async (t) => {
  const { client } = await setup(t);
  await client.create(JOBS, job('restarts', { backoffLimit: 2 }, 'OnFailure'));
  const [pod] = await waitPods(client, 'restarts', 1);
  await report(client, pod, 'Running', 1);
  await sleep(200);
  assert.equal(jobCondition(await getJob(client, 'restarts'), 'Failed'), undefined);
  await report(client, await client.get<Pod>(PODS, 'default', pod.metadata.name!), 'Running', 2);
  const failed = await waitCondition(client, 'restarts', 'Failed');
  assert.equal(jobCondition(failed, 'Failed')?.reason, 'BackoffLimitExceeded');
  await waitFor('the running pod to be deleted', async () =>
    (await podsOf(client, 'restarts')).every((p) => !isActive(p)),
  );
});

test('activeDeadlineSeconds fails the job and deletes its pods', async (t) => {
  const c = await setup(t);
  const { client } = c;
  // startTime has whole seconds, so a deadline of 1 s can pass a few milliseconds after the
  // pods appear, before a poll sees them: the deadline is reached by moving the clock.
  await client.create(JOBS, job('slow', { activeDeadlineSeconds: 30, parallelism: 2 }));
  await waitPods(client, 'slow', 2);
  await sleep(200);
  assert.equal(jobCondition(await getJob(client, 'slow'), 'Failed'), undefined);
  c.advance(31_000);
  // A pod's status change makes the controller look at the job again.
  for (const pod of await podsOf(client, 'slow')) await report(client, pod, 'Running');
  const failed = await waitCondition(client, 'slow', 'Failed');
  assert.equal(jobCondition(failed, 'Failed')?.reason, 'DeadlineExceeded');
  await waitPods(client, 'slow', 0);
  const text = await kubectlOk(c, ['get', 'job', 'slow']);
  assert.match(text, /slow\s+Failed\s+0\/1 of 2\s+\d+s/);
});

test('ttlSecondsAfterFinished deletes the finished job and its pods', async (t) => {
  const { client } = await setup(t);
  await client.create(JOBS, job('short', { ttlSecondsAfterFinished: 1 }));
  const [pod] = await waitPods(client, 'short', 1);
  await report(client, pod, 'Succeeded');
  // The TTL counts from completionTime, in whole seconds: the Job may go at once.
  await waitGone('the job', () => getJob(client, 'short'), 15_000);
  await waitPods(client, 'short', 0);
  const events = await client.list(EVENTS, 'default', {
    fieldSelector: 'involvedObject.name=short,reason=Completed',
  });
  assert.equal(events.items.length, 1, 'the job completed before it was deleted');
});

test('suspend deletes active pods; resuming creates them again', async (t) => {
  const { client } = await setup(t);
  await client.create(JOBS, job('paused', { parallelism: 2, completions: 2 }));
  await waitPods(client, 'paused', 2);
  await client.patch(JOBS, 'default', 'paused', { spec: { suspend: true } });
  const suspended = await waitCondition(client, 'paused', 'Suspended');
  await waitPods(client, 'paused', 0);
  assert.equal((await getJob(client, 'paused')).status?.failed ?? 0, 0);
  await client.patch(JOBS, 'default', 'paused', { spec: { suspend: false } });
  await waitPods(client, 'paused', 2);
  const reasons = await eventReasons(client, suspended);
  assert.ok(reasons.includes('Suspended') && reasons.includes('Resumed'));
});

test('indexed jobs give each pod its completion index', async (t) => {
  const { client } = await setup(t);
  const spec = { completions: 3, parallelism: 3, completionMode: 'Indexed' as const };
  await client.create(JOBS, job('idx', spec));
  const pods = await waitPods(client, 'idx', 3);
  const indexes = pods.map(
    (p) => p.metadata.annotations?.['batch.kubernetes.io/job-completion-index'],
  );
  assert.deepEqual([...indexes].sort(), ['0', '1', '2']);
  for (const pod of pods) {
    const env = pod.spec.containers[0].env?.find((e) => e.name === 'JOB_COMPLETION_INDEX');
    assert.ok(env?.valueFrom);
    await report(client, pod, 'Succeeded');
  }
  const done = await waitCondition(client, 'idx', 'Complete');
  assert.equal(done.status?.completedIndexes, '0-2');
  assert.equal(done.status?.succeeded, 3);
});

test("a Job without labels gets its template's, so kubectl get jobs -l finds it", async (t) => {
  const c = await setup(t);
  const { client } = c;
  const bare = await client.create<Job>(JOBS, job('pi', { suspend: true }));
  const uid = bare.metadata.uid!;
  assert.deepEqual(bare.metadata.labels, {
    'controller-uid': uid,
    'batch.kubernetes.io/controller-uid': uid,
    'job-name': 'pi',
    'batch.kubernetes.io/job-name': 'pi',
  });
  const own = job('labelled', { suspend: true });
  own.metadata.labels = { team: 'a' };
  own.spec.template.metadata = { labels: { app: 'x' } };
  const labelled = await client.create<Job>(JOBS, own);
  assert.deepEqual(labelled.metadata.labels, { team: 'a' }, 'labels of its own are kept');
  const text = await kubectlOk(c, ['get', 'jobs', '-l', 'batch.kubernetes.io/job-name=pi']);
  assert.match(text, /^pi\s/m);
  assert.doesNotMatch(text, /labelled/);
});

test('validation speaks Kubernetes field paths', async (t) => {
  const { client } = await setup(t);
  const cases: [Job, RegExp][] = [
    [job('a', {}, 'Always'), /spec\.template\.spec\.restartPolicy: Unsupported value: "Always"/],
    [job('b', { parallelism: -1 }), /spec\.parallelism: Invalid value: -1/],
    [job('c', { backoffLimit: -2 }), /spec\.backoffLimit: Invalid value: -2/],
    [job('d', { activeDeadlineSeconds: 0 }), /spec\.activeDeadlineSeconds: Invalid value: 0/],
  ];
  for (const [obj, message] of cases) {
    await assert.rejects(client.create(JOBS, obj), (err: Error) => message.test(err.message));
  }
  const created = await client.create<Job>(JOBS, job('fixed', { completions: 2 }));
  const changed = structuredClone(created);
  changed.spec.template.spec.containers[0].image = 'busybox:1.37';
  await assert.rejects(client.update(JOBS, changed), (err: Error) =>
    /spec\.template: Invalid value: .*field is immutable/.test(err.message),
  );
  const more = { ...created, spec: { ...created.spec, completions: 3 } };
  await assert.rejects(client.update(JOBS, more), (err: Error) =>
    /spec\.completions: Invalid value: 3: field is immutable/.test(err.message),
  );
  const bad = cronJob('bad', 'Allow');
  bad.spec.schedule = '61 * * * *';
  await assert.rejects(client.create(CRONJOBS, bad), (err: Error) =>
    /spec\.schedule: Invalid value: "61 \* \* \* \*"/.test(err.message),
  );
  const zone = cronJob('zone', 'Allow');
  zone.spec.timeZone = 'Mars/Olympus';
  await assert.rejects(client.create(CRONJOBS, zone), (err: Error) =>
    /spec\.timeZone: Invalid value: "Mars\/Olympus"/.test(err.message),
  );
});

function cronJob(name: string, policy: 'Allow' | 'Forbid' | 'Replace'): CronJob {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: 'default' },
    spec: {
      schedule: '*/1 * * * *',
      timeZone: 'Etc/UTC',
      concurrencyPolicy: policy,
      jobTemplate: { spec: { ...job(name).spec, backoffLimit: 0 } },
    },
  };
}

async function jobsOf(client: KubeClient, cj: CronJob): Promise<Job[]> {
  const all = (await client.list<Job>(JOBS, 'default')).items;
  return all
    .filter((j) => controllerOf(j)?.uid === cj.metadata.uid && !j.metadata.deletionTimestamp)
    .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
}

/** Makes the CronJob controller look again now (after the test moved the clock). */
async function poke(client: KubeClient, name: string): Promise<void> {
  await client.patch(CRONJOBS, 'default', name, {
    metadata: { annotations: { poke: String(Date.now()) } },
  });
}

/** Plays the kubelet for one Job: its pods end in `phase`. */
async function finishJob(client: KubeClient, name: string, phase: string): Promise<void> {
  const pods = await waitFor(`pods of ${name}`, async () => {
    const p = (await podsOf(client, name)).filter(isActive);
    return p.length > 0 && p;
  });
  for (const pod of pods) await report(client, pod, phase);
  await waitCondition(client, name, phase === 'Succeeded' ? 'Complete' : 'Failed');
}

test('a Forbid cronjob waits for the running job; the due run starts after it', async (t) => {
  const { client, advance } = await setup(t);
  const cj = await client.create<CronJob>(CRONJOBS, cronJob('tick', 'Forbid'));
  assert.equal(cj.spec.successfulJobsHistoryLimit, 3);
  advance(61_000);
  await poke(client, 'tick');
  const [first] = await waitFor('the first run', async () => {
    const jobs = await jobsOf(client, cj);
    return jobs.length === 1 && jobs;
  });
  const minute = Number(first.metadata.name!.slice('tick-'.length));
  assert.equal(
    minute * 60_000,
    Date.parse(first.metadata.annotations!['batch.kubernetes.io/cronjob-scheduled-timestamp']),
  );
  const status = await waitFor('status.active', async () => {
    const c = await client.get<CronJob>(CRONJOBS, 'default', 'tick');
    return c.status?.active?.length === 1 && c.status;
  });
  assert.equal(Date.parse(status.lastScheduleTime!), minute * 60_000);

  advance(60_000);
  await poke(client, 'tick');
  await sleep(300);
  assert.equal((await jobsOf(client, cj)).length, 1, 'Forbid starts nothing while one runs');

  await finishJob(client, first.metadata.name!, 'Succeeded');
  const jobs = await waitFor('the delayed run', async () => {
    const j = await jobsOf(client, cj);
    return j.length === 2 && j;
  });
  assert.equal(jobs[1].metadata.name, `tick-${minute + 1}`);
  const after = await waitFor('lastSuccessfulTime', async () => {
    const c = await client.get<CronJob>(CRONJOBS, 'default', 'tick');
    return c.status?.lastSuccessfulTime ? c : undefined;
  });
  assert.equal(after.status?.active?.[0]?.name, `tick-${minute + 1}`);
});

test('a Replace cronjob deletes the running job for the next run', async (t) => {
  const { client, advance } = await setup(t);
  const cj = await client.create<CronJob>(CRONJOBS, cronJob('swap', 'Replace'));
  advance(61_000);
  await poke(client, 'swap');
  const [first] = await waitFor('the first run', async () => {
    const jobs = await jobsOf(client, cj);
    return jobs.length === 1 && jobs;
  });
  advance(60_000);
  await poke(client, 'swap');
  const [second] = await waitFor('the replacement', async () => {
    const jobs = await jobsOf(client, cj);
    return jobs.length === 1 && jobs[0].metadata.name !== first.metadata.name && jobs;
  });
  const c = await waitFor('active to name the new job', async () => {
    const c = await client.get<CronJob>(CRONJOBS, 'default', 'swap');
    return c.status?.active?.length === 1 && c.status.active[0].uid === second.metadata.uid && c;
  });
  assert.ok(c);
  assert.ok((await eventReasons(client, cj)).includes('SuccessfulDelete'));
});

test('cronjob history limits keep the newest finished jobs', async (t) => {
  const c = await setup(t);
  const { client, advance } = c;
  const spec = cronJob('hist', 'Allow');
  spec.spec.successfulJobsHistoryLimit = 1;
  spec.spec.failedJobsHistoryLimit = 1;
  const cj = await client.create<CronJob>(CRONJOBS, spec);
  const outcomes = ['Succeeded', 'Failed', 'Succeeded', 'Failed'];
  for (let i = 0; i < outcomes.length; i++) {
    advance(60_000);
    await poke(client, 'hist');
    const run = await waitFor(`run ${i}`, async () => {
      const jobs = await jobsOf(client, cj);
      return jobs.find((j) => !jobCondition(j, 'Complete') && !jobCondition(j, 'Failed'));
    });
    await finishJob(client, run.metadata.name!, outcomes[i]);
  }
  const kept = await waitFor('old jobs to be pruned', async () => {
    const jobs = await jobsOf(client, cj);
    return jobs.length === 2 && jobs;
  });
  assert.ok(jobCondition(kept[0], 'Complete') || jobCondition(kept[1], 'Complete'));
  assert.ok(jobCondition(kept[0], 'Failed') || jobCondition(kept[1], 'Failed'));

  const text = await kubectlOk(c, ['get', 'jobs,cronjobs']);
  assert.match(text, /NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE/);
  assert.match(text, /job\.batch\/hist-\d+\s+Complete\s+1\/1\s+\d+s\s+\d+s/);
  assert.match(text, /job\.batch\/hist-\d+\s+Failed\s+0\/1\s+\d+s\s+\d+s/);
  assert.match(text, /NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE/);
  assert.match(
    text,
    /cronjob\.batch\/hist\s+\*\/1 \* \* \* \*\s+Etc\/UTC\s+False\s+0\s+\S+\s+\d+s/,
  );
});
