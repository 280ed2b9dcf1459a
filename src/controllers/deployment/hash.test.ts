import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPodTemplate } from '../../api/defaults.js';
import type { PodTemplateSpec } from '../../api/types.js';
import { equalIgnoringHash, fnv32a, stableJson, templateHash } from './hash.js';

const template: PodTemplateSpec = {
  metadata: { labels: { app: 'web', tier: 'front' } },
  spec: { containers: [{ name: 'web', image: 'nginx:1.25' }] },
};

test('fnv32a matches the published test vectors', () => {
  const table: [string, number][] = [
    ['', 0x811c9dc5],
    ['a', 0xe40c292c],
    ['foobar', 0xbf9cf968],
  ];
  for (const [input, want] of table) assert.equal(fnv32a(input), want, JSON.stringify(input));
});

test('template hashes are stable, short and safe', () => {
  const reordered: PodTemplateSpec = {
    spec: { containers: [{ image: 'nginx:1.25', name: 'web' }] },
    metadata: { labels: { tier: 'front', app: 'web' } },
  };
  const withHashLabel = structuredClone(template);
  withHashLabel.metadata!.labels!['pod-template-hash'] = 'xyz';
  const changed = structuredClone(template);
  changed.spec.containers[0].image = 'nginx:1.26';
  const emptyResources = structuredClone(template);
  emptyResources.spec.containers[0].resources = {};
  const memEnv = (divisor?: string) => [
    { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor } } },
  ];
  const noDivisor = structuredClone(template);
  noDivisor.spec.containers[0].env = memEnv();
  const zeroDivisor = structuredClone(template);
  zeroDivisor.spec.containers[0].env = memEnv('0');
  const miDivisor = structuredClone(template);
  miDivisor.spec.containers[0].env = memEnv('1Mi');
  const limited = structuredClone(template);
  limited.spec.containers[0].resources = { limits: { cpu: '1' } };
  const table: { name: string; a: string; b: string; equal: boolean }[] = [
    { name: 'key order', a: templateHash(template), b: templateHash(reordered), equal: true },
    { name: 'hash label', a: templateHash(template), b: templateHash(withHashLabel), equal: true },
    { name: 'image change', a: templateHash(template), b: templateHash(changed), equal: false },
    {
      name: 'empty resources',
      a: templateHash(template),
      b: templateHash(emptyResources),
      equal: true,
    },
    { name: 'resources', a: templateHash(template), b: templateHash(limited), equal: false },
    {
      name: 'divisor "0" is no divisor',
      a: templateHash(noDivisor),
      b: templateHash(zeroDivisor),
      equal: true,
    },
    { name: 'divisor', a: templateHash(noDivisor), b: templateHash(miDivisor), equal: false },
    {
      name: 'collision count',
      a: templateHash(template),
      b: templateHash(template, 1),
      equal: false,
    },
  ];
  for (const c of table) assert.equal(c.a === c.b, c.equal, c.name);
  const hash = templateHash(template);
  assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
  assert.equal(hash, templateHash(structuredClone(template)));
});

test('stable JSON sorts keys and drops undefined', () => {
  assert.equal(stableJson({ b: 1, a: [{ d: 2, c: undefined }] }), '{"a":[{"d":2}],"b":1}');
});

test('templates compare equal ignoring the hash label', () => {
  const labeled = structuredClone(template);
  labeled.metadata!.labels!['pod-template-hash'] = 'abc';
  assert.ok(equalIgnoringHash(template, labeled));
  const other = structuredClone(labeled);
  other.metadata!.labels!.tier = 'back';
  assert.ok(!equalIgnoringHash(template, other));
});

test("a template stored without today's defaults is the same template", () => {
  const bare: PodTemplateSpec = {
    metadata: { labels: { app: 'web' } },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'nginx:1',
          ports: [{ name: 'http', containerPort: 80 }],
          readinessProbe: { httpGet: { port: 'http' }, periodSeconds: 2 },
          resources: { limits: { cpu: '0.5' } },
        },
      ],
    },
  };
  const defaulted = structuredClone(bare);
  defaultPodTemplate(defaulted);
  assert.notDeepEqual(defaulted, bare);
  assert.ok(equalIgnoringHash(bare, defaulted));
  assert.equal(templateHash(bare), templateHash(defaulted));
  const other = structuredClone(defaulted);
  (other.spec.containers[0].readinessProbe as { periodSeconds: number }).periodSeconds = 3;
  assert.ok(!equalIgnoringHash(bare, other), 'a value given still counts');
});
