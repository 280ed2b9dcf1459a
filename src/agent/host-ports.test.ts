import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Pod } from '../api/types.js';
import { HostPortBook } from './host-ports.js';

function pod(name: string, ip: string | undefined, hostPort?: number, phase = 'Running'): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'ns', uid: `uid-${name}` },
    spec: {
      containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80, hostPort }] }],
    },
    status: { podIP: ip, phase },
  } as Pod;
}

const published = (book: HostPortBook) => book.list().map((p) => `${p.pod}:${p.hostPort}`);

test('the host port book changes only with a pod whose published ports change', () => {
  const book = new HostPortBook();
  const steps: [string, () => boolean, boolean, string[]][] = [
    [
      'a pod without an address publishes nothing',
      () => book.update(pod('a', undefined, 81)),
      false,
      [],
    ],
    [
      'it publishes once it has one',
      () => book.update(pod('a', '10.0.0.1', 81)),
      true,
      ['ns/a:81'],
    ],
    [
      'the same pod again is no change',
      () => book.update(pod('a', '10.0.0.1', 81)),
      false,
      ['ns/a:81'],
    ],
    [
      'a pod without host ports is no change',
      () => book.update(pod('b', '10.0.0.2')),
      false,
      ['ns/a:81'],
    ],
    [
      'a second pod adds its port',
      () => book.update(pod('c', '10.0.0.3', 83)),
      true,
      ['ns/a:81', 'ns/c:83'],
    ],
    [
      'a new address is a change',
      () => book.update(pod('a', '10.0.0.9', 81)),
      true,
      ['ns/a:81', 'ns/c:83'],
    ],
    [
      'an ended pod publishes nothing',
      () => book.update(pod('c', '10.0.0.3', 83, 'Failed')),
      true,
      ['ns/a:81'],
    ],
    ['a pod gone with ports', () => book.remove(pod('a', '10.0.0.9', 81)), true, []],
    ['a pod gone without ports', () => book.remove(pod('b', '10.0.0.2')), false, []],
  ];
  for (const [name, step, changed, after] of steps) {
    assert.equal(step(), changed, name);
    assert.deepEqual(published(book), after, name);
  }
  assert.equal(
    book.list().find(() => true),
    undefined,
  );
});

test('the host port book keeps the address a pod has now', () => {
  const book = new HostPortBook();
  book.update(pod('a', '10.0.0.1', 81));
  book.update(pod('a', '10.0.0.9', 81));
  assert.deepEqual(
    book.list().map((p) => p.podIP),
    ['10.0.0.9'],
  );
});
