import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultCronJob,
  defaultJob,
  validateCronJob,
  validateJob,
  type CronJob,
  type Job,
} from './batch.js';
import { formatFieldError } from './errors.js';

function job(spec: Partial<Job['spec']> = {}, policy: string | undefined = 'Never'): Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'pi', namespace: 'default', uid: 'u-1' },
    spec: {
      template: {
        spec: { restartPolicy: policy as 'Never', containers: [{ name: 'c', image: 'perl:5' }] },
      },
      ...spec,
    },
  };
}

/** A Job whose template leaves restartPolicy out: the pod default, Always, is refused. */
function noPolicy(): Job {
  const j = job();
  delete j.spec.template.spec.restartPolicy;
  return j;
}

/** Defaults then validates, as the API server does on create; returns the error texts. */
function create(obj: Job): string[] {
  defaultJob(obj);
  return validateJob(obj).map(formatFieldError);
}

test('Job defaults', () => {
  const cases: [Partial<Job['spec']>, Partial<Job['spec']>][] = [
    [{}, { completions: 1, parallelism: 1, backoffLimit: 6, completionMode: 'NonIndexed' }],
    [{ parallelism: 3 }, { completions: undefined, parallelism: 3 }],
    [{ completions: 4 }, { completions: 4, parallelism: 1 }],
    [
      { backoffLimit: 0, suspend: true },
      { backoffLimit: 0, suspend: true },
    ],
  ];
  for (const [given, want] of cases) {
    const j = job(given);
    defaultJob(j);
    for (const [k, v] of Object.entries(want)) assert.equal(j.spec[k], v, `${k} of ${given}`);
  }
});

test('Job selector and pod labels are generated from the uid unless manualSelector', () => {
  const j = job();
  defaultJob(j);
  assert.deepEqual(j.spec.selector, {
    matchLabels: { 'batch.kubernetes.io/controller-uid': 'u-1' },
  });
  assert.deepEqual(j.spec.template.metadata?.labels, {
    'controller-uid': 'u-1',
    'batch.kubernetes.io/controller-uid': 'u-1',
    'job-name': 'pi',
    'batch.kubernetes.io/job-name': 'pi',
  });
  assert.deepEqual(validateJob(j), []);

  const manual = job({ manualSelector: true, selector: { matchLabels: { app: 'x' } } });
  manual.spec.template.metadata = { labels: { app: 'x' } };
  defaultJob(manual);
  assert.deepEqual(manual.spec.template.metadata.labels, { app: 'x' });
  assert.deepEqual(validateJob(manual), []);

  const wrong = job({ selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u-2' } } });
  assert.match(create(wrong).join('\n'), /spec\.selector|selector/);

  // The selector is checked even when the spec has errors of its own, as Kubernetes does.
  const both = job({
    parallelism: -1,
    selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u-2' } },
  });
  assert.deepEqual(
    create(both).map((e) => e.slice(0, e.indexOf(':'))),
    ['spec.selector', 'spec.parallelism', 'spec.template.metadata.labels'],
  );
});

test("a Job without labels gets its template's, generated ones included", () => {
  const generated = {
    'controller-uid': 'u-1',
    'batch.kubernetes.io/controller-uid': 'u-1',
    'job-name': 'pi',
    'batch.kubernetes.io/job-name': 'pi',
  };
  const cases: {
    labels?: Record<string, string>;
    template?: Record<string, string>;
    want: object;
  }[] = [
    { want: generated },
    { labels: {}, template: { app: 'x' }, want: { app: 'x', ...generated } },
    { labels: { team: 'a' }, template: { app: 'x' }, want: { team: 'a' } },
  ];
  for (const c of cases) {
    const j = job();
    if (c.labels) j.metadata.labels = c.labels;
    if (c.template) j.spec.template.metadata = { labels: c.template };
    defaultJob(j);
    assert.deepEqual(j.metadata.labels, c.want, JSON.stringify(c));
    assert.ok(j.metadata.labels !== j.spec.template.metadata?.labels, 'a copy, not the same map');
  }
});

test('Job validation errors carry Kubernetes field paths', () => {
  const cases: [Job, string][] = [
    [
      job({}, 'Always'),
      'spec.template.spec.restartPolicy: Unsupported value: "Always": ' +
        'supported values: "OnFailure", "Never"',
    ],
    [noPolicy(), 'spec.template.spec.restartPolicy: Unsupported value: "Always"'],
    [job({ parallelism: -1 }), 'spec.parallelism: Invalid value: -1'],
    [job({ completions: -1 }), 'spec.completions: Invalid value: -1'],
    [job({ backoffLimit: -1 }), 'spec.backoffLimit: Invalid value: -1'],
    [job({ activeDeadlineSeconds: 0 }), 'spec.activeDeadlineSeconds: Invalid value: 0'],
    [job({ ttlSecondsAfterFinished: -5 }), 'spec.ttlSecondsAfterFinished: Invalid value: -5'],
    [job({ completionMode: 'Sometimes' as 'Indexed' }), 'spec.completionMode: Unsupported value'],
    [job({ completionMode: 'Indexed', parallelism: 2 }), 'spec.completions: Required value'],
  ];
  for (const [obj, want] of cases) {
    const errs = create(obj);
    assert.ok(
      errs.some((e) => e.startsWith(want)),
      `${want}\n got ${errs.join('; ')}`,
    );
  }
  assert.deepEqual(create(job({ completions: 3, parallelism: 2, activeDeadlineSeconds: 5 })), []);
});

test('Job updates may not change the template, selector, mode or NonIndexed completions', () => {
  const old = job({ completions: 2 });
  defaultJob(old);
  const cases: [(j: Job) => void, string | undefined][] = [
    [(j) => (j.spec.parallelism = 5), undefined],
    [(j) => (j.spec.suspend = true), undefined],
    [(j) => (j.spec.template.spec.containers[0].image = 'perl:6'), 'spec.template: Invalid value'],
    [(j) => (j.spec.completions = 3), 'spec.completions: Invalid value: 3: field is immutable'],
    [(j) => (j.spec.completionMode = 'Indexed'), 'spec.completionMode: Invalid value'],
  ];
  for (const [change, want] of cases) {
    const next = structuredClone(old);
    change(next);
    defaultJob(next);
    const errs = validateJob(next, old).map(formatFieldError);
    if (want === undefined) assert.deepEqual(errs, []);
    else
      assert.ok(
        errs.some((e) => e.startsWith(want)),
        `${want}\n got ${errs.join('; ')}`,
      );
  }
  const template = validateJob(
    { ...old, spec: { ...old.spec, template: { ...old.spec.template, spec: { containers: [] } } } },
    old,
  ).map(formatFieldError);
  assert.ok(template.some((e) => / field is immutable$/.test(e) && e.startsWith('spec.template:')));
});

function cronJob(schedule: string, extra: Partial<CronJob['spec']> = {}): CronJob {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'nightly', namespace: 'default', uid: 'c-1' },
    spec: { schedule, jobTemplate: { spec: job().spec }, ...extra },
  };
}

test('CronJob defaults', () => {
  const cj = cronJob('@daily');
  defaultCronJob(cj);
  assert.equal(cj.spec.concurrencyPolicy, 'Allow');
  assert.equal(cj.spec.suspend, false);
  assert.equal(cj.spec.successfulJobsHistoryLimit, 3);
  assert.equal(cj.spec.failedJobsHistoryLimit, 1);
  assert.equal(cj.spec.jobTemplate.spec.backoffLimit, 6);
  assert.equal(cj.spec.jobTemplate.spec.selector, undefined, 'each Job generates its own');
});

test('CronJob validation', () => {
  const cases: [CronJob, string | undefined][] = [
    [cronJob('*/5 * * * *'), undefined],
    [cronJob('0 3 * * MON', { timeZone: 'Europe/Paris' }), undefined],
    [cronJob('61 * * * *'), 'spec.schedule: Invalid value: "61 * * * *": end of range (61)'],
    [cronJob('* * *'), 'spec.schedule: Invalid value: "* * *": expected exactly 5 fields'],
    [cronJob('TZ=UTC * * * * *'), 'spec.schedule: Invalid value: "TZ=UTC * * * * *": cannot use'],
    [cronJob(''), 'spec.schedule: Required value'],
    [cronJob('@daily', { timeZone: 'Nowhere/Land' }), 'spec.timeZone: Invalid value: "Nowhere'],
    [
      cronJob('@daily', { concurrencyPolicy: 'Sometimes' as 'Allow' }),
      'spec.concurrencyPolicy: Unsupported value: "Sometimes"',
    ],
    [cronJob('@daily', { startingDeadlineSeconds: -1 }), 'spec.startingDeadlineSeconds: Invalid'],
    [cronJob('@daily', { failedJobsHistoryLimit: -1 }), 'spec.failedJobsHistoryLimit: Invalid'],
  ];
  for (const [obj, want] of cases) {
    defaultCronJob(obj);
    const errs = validateCronJob(obj).map(formatFieldError);
    if (want === undefined) assert.deepEqual(errs, [], obj.spec.schedule);
    else
      assert.ok(
        errs.some((e) => e.startsWith(want)),
        `${want}\n got ${errs.join('; ')}`,
      );
  }
  const always = cronJob('@daily');
  always.spec.jobTemplate.spec.template.spec.restartPolicy = 'Always';
  assert.match(
    validateCronJob(always).map(formatFieldError).join(),
    /spec\.jobTemplate\.spec\.template\.spec\.restartPolicy: Unsupported value: "Always"/,
  );
});
