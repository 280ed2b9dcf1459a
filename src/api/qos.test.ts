import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qosClassOf, type QosClass } from './qos.js';
import type { Container } from './types.js';

const c = (requests?: Record<string, string>, limits?: Record<string, string>): Container => ({
  name: 'c',
  image: 'i',
  resources: { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) },
});

test('QoS classes as Kubernetes computes them', () => {
  const both = { cpu: '500m', memory: '64Mi' };
  const cases: [string, Container[], Container[], QosClass][] = [
    ['nothing asked', [c()], [], 'BestEffort'],
    ['zero quantities count as unset', [c({ cpu: '0' }, { memory: '0' })], [], 'BestEffort'],
    ['requests equal limits', [c(both, both)], [], 'Guaranteed'],
    ['the same in other units', [c({ cpu: '0.5', memory: '65536Ki' }, both)], [], 'Guaranteed'],
    ['a request only', [c({ cpu: '100m' })], [], 'Burstable'],
    ['a cpu limit only', [c({ cpu: '1' }, { cpu: '1' })], [], 'Burstable'],
    ['requests under limits', [c({ cpu: '100m', memory: '64Mi' }, both)], [], 'Burstable'],
    ['one of two containers unlimited', [c(both, both), c()], [], 'Burstable'],
    ['an init container counts', [c(both, both)], [c({ cpu: '1m' })], 'Burstable'],
    ['every container limited', [c(both, both)], [c(both, both)], 'Guaranteed'],
    ['other resources do not count', [c({ 'ephemeral-storage': '1Gi' })], [], 'BestEffort'],
  ];
  for (const [name, containers, initContainers, want] of cases) {
    assert.equal(qosClassOf({ containers, initContainers }), want, name);
  }
});
