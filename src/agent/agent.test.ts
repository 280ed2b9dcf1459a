import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Pod } from '../api/types.js';
import { deadlineLeftMs } from './agent.js';
import { hostPortsOf } from './host-ports.js';

function pod(name: string, extra: { ip?: string; phase?: string; hostNetwork?: boolean }): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'ns' },
    spec: {
      hostNetwork: extra.hostNetwork,
      containers: [
        {
          name: 'c',
          image: 'i',
          ports: [
            { containerPort: 8080, hostPort: 18080 },
            { containerPort: 53, hostPort: 5353, protocol: 'UDP', hostIP: '10.0.0.2' },
            { containerPort: 9090 },
          ],
        },
      ],
    },
    status: { podIP: extra.ip, phase: extra.phase ?? 'Running' },
  } as Pod;
}

test('the ports pods publish: once they have an address, until they end, not on the host network', () => {
  const ports = hostPortsOf([
    pod('a', { ip: '10.42.0.5' }),
    pod('pending', {}),
    pod('done', { ip: '10.42.0.6', phase: 'Succeeded' }),
    pod('failed', { ip: '10.42.0.7', phase: 'Failed' }),
    pod('host', { ip: '192.0.2.1', hostNetwork: true }),
  ]);
  assert.deepEqual(ports, [
    {
      pod: 'ns/a',
      protocol: 'TCP',
      hostPort: 18080,
      hostIP: undefined,
      podIP: '10.42.0.5',
      containerPort: 8080,
    },
    {
      pod: 'ns/a',
      protocol: 'UDP',
      hostPort: 5353,
      hostIP: '10.0.0.2',
      podIP: '10.42.0.5',
      containerPort: 53,
    },
  ]);
});

test('activeDeadlineSeconds counts from the pod start on the node', () => {
  const p = pod('a', { ip: '10.42.0.5' });
  const now = Date.parse('2026-12-05T10:00:10Z');
  assert.equal(deadlineLeftMs(p, now), undefined, 'no deadline');
  p.spec.activeDeadlineSeconds = 30;
  assert.equal(deadlineLeftMs(p, now), undefined, 'not started');
  p.status!.startTime = '2026-12-05T10:00:00Z';
  assert.equal(deadlineLeftMs(p, now), 20_000);
  p.spec.activeDeadlineSeconds = 5;
  assert.equal(deadlineLeftMs(p, now), -5_000);
});
