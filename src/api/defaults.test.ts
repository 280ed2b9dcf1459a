import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultPullPolicy } from './defaults.js';

const SHA = `sha256:${'a'.repeat(64)}`;

test('the default pull policy follows the tag, as Kubernetes parses it', () => {
  const cases: [string, 'Always' | 'IfNotPresent'][] = [
    ['busybox', 'Always'],
    ['busybox:latest', 'Always'],
    ['busybox:1.36', 'IfNotPresent'],
    [`busybox@${SHA}`, 'IfNotPresent'],
    [`busybox:latest@${SHA}`, 'Always'],
    [`busybox:1.36@${SHA}`, 'IfNotPresent'],
    ['127.0.0.1:5000/web', 'Always'],
    ['127.0.0.1:5000/web:1', 'IfNotPresent'],
    [`127.0.0.1:5000/web:latest@${SHA}`, 'Always'],
    [`127.0.0.1:5000/web@${SHA}`, 'IfNotPresent'],
  ];
  for (const [image, policy] of cases) assert.equal(defaultPullPolicy(image), policy, image);
});
