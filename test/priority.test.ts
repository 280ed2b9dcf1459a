import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource } from '../src/api/resources.js';
import type { KObject, Pod } from '../src/api/types.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';

/** PriorityClass served by the API, and the Priority admission plugin on pod creation. */

const classes = byGroupResource.get('scheduling.k8s.io/priorityclasses')!;
const pods = byGroupResource.get('/pods')!;

function priorityClass(name: string, value: number, extra: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name },
    value,
    ...extra,
  };
}

function pod(name: string, spec: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'i' }], ...spec },
  };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

describe('priority classes', () => {
  let api: TestApiServer;
  before(async () => {
    api = await startTestApiServer();
  });
  after(() => api.stop());

  test('the built-in classes exist', async () => {
    const list = await api.client.list(classes);
    const values = Object.fromEntries(list.items.map((c) => [c.metadata.name, c.value]));
    assert.deepEqual(values, {
      'system-cluster-critical': 2_000_000_000,
      'system-node-critical': 2_000_001_000,
    });
  });

  test('class validation', async () => {
    const cases: { name: string; obj: KObject; error?: RegExp }[] = [
      { name: 'user class', obj: priorityClass('high', 1000, { description: 'x' }) },
      { name: 'at the user limit', obj: priorityClass('limit', 1_000_000_000) },
      {
        name: 'above the user limit',
        obj: priorityClass('too-high', 1_000_000_001),
        error: /value: Forbidden: maximum allowed/,
      },
      {
        name: 'reserved prefix',
        obj: priorityClass('system-mine', 5),
        error: /metadata.name: Forbidden.*system-/,
      },
      {
        name: 'bad policy',
        obj: priorityClass('bad', 5, { preemptionPolicy: 'Sometimes' }),
        error: /preemptionPolicy: Unsupported/,
      },
      { name: 'first default', obj: priorityClass('default-one', 7, { globalDefault: true }) },
      {
        name: 'second default',
        obj: priorityClass('default-two', 8, { globalDefault: true }),
        error: /already marked as the global default/,
      },
      { name: 'never preempts', obj: priorityClass('polite', 500, { preemptionPolicy: 'Never' }) },
    ];
    for (const c of cases) {
      const message = await refusal(api.client.create(classes, c.obj));
      if (c.error) assert.match(message, c.error, c.name);
      else assert.equal(message, '', c.name);
    }
    const high = await api.client.get<KObject>(classes, undefined, 'high');
    assert.equal(high.preemptionPolicy, 'PreemptLowerPriority', 'defaulted');
    const changed = { ...high, value: 2000 };
    assert.match(
      await refusal(api.client.update(classes, changed)),
      /value: Forbidden: field is immutable/,
    );
  });

  test('pods get the priority of their class, the global default, or are refused', async () => {
    const cases: {
      name: string;
      spec: Record<string, unknown>;
      priority?: number;
      policy?: string;
      className?: string;
      error?: RegExp;
    }[] = [
      {
        name: 'named class',
        spec: { priorityClassName: 'high' },
        priority: 1000,
        policy: 'PreemptLowerPriority',
        className: 'high',
      },
      {
        name: 'system class',
        spec: { priorityClassName: 'system-node-critical' },
        priority: 2_000_001_000,
        className: 'system-node-critical',
      },
      {
        name: 'never preempts',
        spec: { priorityClassName: 'polite' },
        priority: 500,
        policy: 'Never',
      },
      { name: 'global default', spec: {}, priority: 7, className: 'default-one' },
      {
        name: 'unknown class',
        spec: { priorityClassName: 'nope' },
        error: /spec.priorityClassName: Not found: "nope"/,
      },
      {
        name: 'client-set priority',
        spec: { priorityClassName: 'high', priority: 5 },
        error: /spec.priority: Forbidden/,
      },
      {
        name: 'matching priority',
        spec: { priorityClassName: 'high', priority: 1000 },
        priority: 1000,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const created = api.client.create<Pod>(pods, pod(`p${i}`, c.spec));
      if (c.error) {
        assert.match(await refusal(created), c.error, c.name);
        continue;
      }
      const p = await created;
      assert.equal(p.spec.priority, c.priority, c.name);
      if (c.policy) assert.equal(p.spec.preemptionPolicy, c.policy, c.name);
      if (c.className) assert.equal(p.spec.priorityClassName, c.className, c.name);
    }
  });

  test('without a global default a pod gets priority 0', async () => {
    await api.client.delete(classes, undefined, 'default-one');
    const p = await api.client.create<Pod>(pods, pod('plain'));
    assert.equal(p.spec.priority, 0);
    assert.equal(p.spec.priorityClassName, undefined);
  });
});
