import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Container, Pod } from '../api/types.js';
import { startsEarly } from './pod-worker.js';

const pod = (containers: Partial<Container>[], init: Partial<Container>[] = []): Pod =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u' },
    spec: {
      containers: containers.map((c) => ({ name: 'c', image: 'i', ...c })),
      ...(init.length
        ? { initContainers: init.map((c) => ({ name: 'i', image: 'i', ...c })) }
        : {}),
    },
  }) as Pod;

test('containers start while the network is attached only when they need no pod IP first', () => {
  const podIP = { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } };
  const podIPs = { name: 'IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } };
  const nodeName = { name: 'N', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };
  const hook = { postStart: { exec: { command: ['true'] } } };
  const cases: [string, Pod, boolean][] = [
    ['plain container', pod([{}]), true],
    ['env from another field', pod([{ env: [nodeName] }]), true],
    ['preStop hook only', pod([{ lifecycle: { preStop: hook.postStart } }]), true],
    ['env names status.podIP', pod([{}, { env: [podIP] }]), false],
    ['env names status.podIPs', pod([{ env: [podIPs] }]), false],
    ['postStart hook', pod([{ lifecycle: hook }]), false],
    ['init containers', pod([{}], [{}]), false],
  ];
  for (const [name, p, want] of cases) assert.equal(startsEarly(p), want, name);
});
