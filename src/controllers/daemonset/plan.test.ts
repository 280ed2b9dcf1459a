import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DaemonSet } from '../../api/apps-workloads.js';
import type { Pod } from '../../api/types.js';
import { REVISION_HASH_LABEL } from '../history.js';
import {
  computeStatus,
  manageNodes,
  rollingUpdate,
  scaledValue,
  updateBudget,
  type NodeSlot,
} from './plan.js';

const NEW = 'new';

/** A pod by a short code: `<name>:<hash>[:ready|:failed]`. */
function pod(code: string): Pod {
  const [name, hash, state] = code.split(':');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { [REVISION_HASH_LABEL]: hash } },
    spec: { containers: [] },
    status: {
      phase: state === 'failed' ? 'Failed' : state === 'ready' ? 'Running' : 'Pending',
      conditions: [{ type: 'Ready', status: state === 'ready' ? 'True' : 'False' }],
    },
  };
}

/** A slot by a short code: `node=pod,pod` with `!` (no new pods), `x` (evict) prefixes. */
function slot(code: string): NodeSlot {
  const [head, list] = code.split('=');
  const evict = head.startsWith('x');
  const noNew = head.startsWith('!') || evict;
  const node = head.replace(/^[!x]/, '');
  return {
    node,
    verdict: { shouldRun: !noNew, shouldContinueRunning: !evict },
    pods: list ? list.split(',').map(pod) : [],
  };
}

const available = (p: Pod) =>
  p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

function names(plan: ReturnType<typeof manageNodes>) {
  return {
    createOn: [...plan.createOn].sort(),
    delete: plan.delete.map((d) => `${d.pod.metadata.name}/${d.reason}`).sort(),
  };
}

const manageCases: {
  name: string;
  slots: string[];
  surging?: boolean;
  createOn: string[];
  delete: string[];
}[] = [
  { name: 'empty node gets a pod', slots: ['a=', 'b=p1:new:ready'], createOn: ['a'], delete: [] },
  {
    name: 'NoSchedule-tainted node gets none but keeps its pod',
    slots: ['!a=', '!b=p1:new:ready'],
    createOn: [],
    delete: [],
  },
  {
    name: 'evicting and vanished nodes lose their pods',
    slots: ['xa=p1:new:ready', 'xgone=p2:old'],
    createOn: [],
    delete: ['p1/misscheduled', 'p2/misscheduled'],
  },
  {
    name: 'failed pod is deleted and replaced at once',
    slots: ['a=p1:new:failed'],
    createOn: ['a'],
    delete: ['p1/failed'],
  },
  {
    name: 'extra pods beyond the oldest are deleted',
    slots: ['a=p1:old:ready,p2:new,p3:new'],
    createOn: [],
    delete: ['p2/duplicate', 'p3/duplicate'],
  },
  {
    name: 'while surging, one old and one new pod may share a node',
    slots: ['a=p1:old:ready,p2:new,p3:new'],
    surging: true,
    createOn: [],
    delete: ['p3/duplicate'],
  },
];

for (const c of manageCases) {
  test(`manageNodes: ${c.name}`, () => {
    const plan = manageNodes(c.slots.map(slot), NEW, c.surging ?? false);
    assert.deepEqual(names(plan), { createOn: c.createOn, delete: c.delete });
  });
}

const updateCases: {
  name: string;
  slots: string[];
  surge?: number;
  unavailable: number;
  createOn: string[];
  delete: string[];
}[] = [
  {
    name: 'all available, maxUnavailable 1: one old pod goes',
    slots: ['a=p1:old:ready', 'b=p2:old:ready', 'c=p3:old:ready'],
    unavailable: 1,
    createOn: [],
    delete: ['p1/update'],
  },
  {
    name: 'maxUnavailable 2: two go',
    slots: ['a=p1:old:ready', 'b=p2:old:ready', 'c=p3:old:ready'],
    unavailable: 2,
    createOn: [],
    delete: ['p1/update', 'p2/update'],
  },
  {
    name: 'a new pod not yet available uses the budget',
    slots: ['a=p1:new', 'b=p2:old:ready', 'c=p3:old:ready'],
    unavailable: 1,
    createOn: [],
    delete: [],
  },
  {
    name: 'a node without a pod uses the budget',
    slots: ['a=', 'b=p2:old:ready'],
    unavailable: 1,
    createOn: [],
    delete: [],
  },
  {
    name: 'an unavailable old pod is replaced regardless of the budget',
    slots: ['a=p1:new', 'b=p2:old', 'c=p3:old:ready'],
    unavailable: 1,
    createOn: [],
    delete: ['p2/update'],
  },
  {
    name: 'nodes that should not run a daemon are left to manageNodes',
    slots: ['!a=p1:old:ready', 'b=p2:new:ready'],
    unavailable: 1,
    createOn: [],
    delete: [],
  },
  {
    name: 'surge: new pods start beside old ones up to maxSurge',
    slots: ['a=p1:old:ready', 'b=p2:old:ready', 'c=p3:old:ready'],
    surge: 2,
    unavailable: 0,
    createOn: ['a', 'b'],
    delete: [],
  },
  {
    name: 'surge: an old pod goes once the new one beside it is available',
    slots: ['a=p1:old:ready,p4:new:ready', 'b=p2:old:ready,p5:new', 'c=p3:old:ready'],
    surge: 1,
    unavailable: 0,
    createOn: [],
    delete: ['p1/update'],
  },
  {
    name: 'surge: an unavailable old pod gets its replacement at once',
    slots: ['a=p1:old', 'b=p2:old:ready,p5:new'],
    surge: 1,
    unavailable: 0,
    createOn: ['a'],
    delete: [],
  },
];

for (const c of updateCases) {
  test(`rollingUpdate: ${c.name}`, () => {
    const budget = { surge: c.surge ?? 0, unavailable: c.unavailable };
    const plan = rollingUpdate(c.slots.map(slot), NEW, budget, available);
    assert.deepEqual(names(plan), { createOn: c.createOn, delete: c.delete });
  });
}

function ds(rollingUpdate: Record<string, unknown>): DaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'd', generation: 3 },
    spec: {
      selector: {},
      template: { spec: { containers: [] } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate },
    },
  };
}

test('scaledValue and updateBudget: percentages round up; both zero means one unavailable', () => {
  assert.equal(scaledValue('10%', 25), 3);
  assert.equal(scaledValue(2, 25), 2);
  assert.deepEqual(updateBudget(ds({ maxUnavailable: '30%', maxSurge: 0 }), 10), {
    surge: 0,
    unavailable: 3,
  });
  assert.deepEqual(updateBudget(ds({ maxUnavailable: '0%', maxSurge: '0%' }), 0), {
    surge: 0,
    unavailable: 1,
  });
  assert.deepEqual(updateBudget(ds({ maxUnavailable: 0, maxSurge: 1 }), 4), {
    surge: 1,
    unavailable: 0,
  });
});

test('computeStatus counts per node', () => {
  const slots = ['a=p1:new:ready', 'b=p2:old:ready', 'c=p3:new', 'd=', '!e=p5:old', 'xf=p6:old'];
  const status = computeStatus(ds({}), slots.map(slot), NEW, available);
  assert.deepEqual(status, {
    desiredNumberScheduled: 4,
    currentNumberScheduled: 3,
    numberMisscheduled: 2,
    numberReady: 2,
    numberAvailable: 2,
    numberUnavailable: 2,
    updatedNumberScheduled: 2,
    observedGeneration: 3,
  });
});
