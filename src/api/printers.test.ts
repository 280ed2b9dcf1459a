import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printers } from './printers.js';
import type { ContainerStatus, Pod } from './types.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');

/** A container status with `restarts`, whose previous run ended `agoMs` before NOW. */
function status(name: string, restarts: number, agoMs?: number): ContainerStatus {
  const finishedAt =
    agoMs === undefined ? undefined : new Date(NOW - agoMs).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    name,
    ready: true,
    restartCount: restarts,
    image: 'busybox:1',
    imageID: '',
    state: { running: { startedAt: '2026-12-05T11:00:00Z' } },
    lastState: finishedAt ? { terminated: { exitCode: 1, reason: 'Error', finishedAt } } : {},
  };
}

function pod(containers: ContainerStatus[], inits: ContainerStatus[] = []): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', creationTimestamp: '2026-12-05T11:00:00Z' },
    spec: {
      containers: containers.map((c) => ({ name: c.name, image: 'busybox:1' })),
      initContainers: inits.map((c) => ({ name: c.name, image: 'busybox:1' })),
    },
    status: { phase: 'Running', containerStatuses: containers, initContainerStatuses: inits },
  } as Pod;
}

test("the RESTARTS column says how long ago the last restart was, as kubectl's does", () => {
  const printer = printers.Pod!;
  const column = printer.columns.findIndex((c) => c.name === 'Restarts');
  const cases: { name: string; pod: Pod; want: string }[] = [
    { name: 'never restarted', pod: pod([status('a', 0)]), want: '0' },
    { name: 'restarted', pod: pod([status('a', 2, 5_000)]), want: '2 (5s ago)' },
    { name: 'no finishedAt known', pod: pod([status('a', 3)]), want: '3' },
    {
      name: 'the latest of all containers, counts summed',
      pod: pod([status('a', 1, 3 * 60_000), status('b', 4, 90_000)]),
      want: '5 (90s ago)',
    },
    {
      name: 'while initializing, init restarts count',
      pod: (() => {
        const init = status('init', 2, 10_000);
        init.state = { waiting: { reason: 'CrashLoopBackOff' } };
        return pod([status('a', 0)], [init]);
      })(),
      want: '2 (10s ago)',
    },
    {
      name: 'once initialized, only the containers count',
      pod: (() => {
        const init = status('init', 2, 60_000);
        init.state = { terminated: { exitCode: 0, reason: 'Completed' } };
        return pod([status('a', 1, 20_000)], [init]);
      })(),
      want: '1 (20s ago)',
    },
  ];
  for (const c of cases) {
    assert.equal(printer.cells(c.pod, NOW)[column], c.want, c.name);
  }
});
