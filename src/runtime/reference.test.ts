import assert from 'node:assert/strict';
import { test } from 'node:test';

import { normalizeReference, parseReference } from './reference.js';
import { RuntimeError } from './runtime.js';

const SHA = 'sha256:' + 'ab'.repeat(32);

test('normalizeReference: valid references', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1', 'docker.io/library/busybox:1'],
    ['busybox:1.36.1-musl', 'docker.io/library/busybox:1.36.1-musl'],
    ['foo/bar', 'docker.io/foo/bar:latest'],
    ['foo/bar/baz:v2', 'docker.io/foo/bar/baz:v2'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/foo/bar', 'docker.io/foo/bar:latest'],
    ['127.0.0.1:5000/x:tag', '127.0.0.1:5000/x:tag'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest'],
    ['localhost/x', 'localhost/x:latest'],
    ['localhost:5000/team/app:1', 'localhost:5000/team/app:1'],
    ['quay.io/a_b/c-d__e.f:x', 'quay.io/a_b/c-d__e.f:x'],
    [`x@${SHA}`, `docker.io/library/x@${SHA}`],
    [`x:1@${SHA}`, `docker.io/library/x:1@${SHA}`],
    [`registry.example.com:443/x@${SHA}`, `registry.example.com:443/x@${SHA}`],
  ];
  for (const [input, want] of cases) {
    assert.equal(normalizeReference(input), want, input);
  }
});

test('parseReference: parts', () => {
  assert.deepEqual(parseReference('127.0.0.1:5000/a/b:c'), {
    domain: '127.0.0.1:5000',
    path: 'a/b',
    tag: 'c',
    digest: undefined,
  });
  assert.deepEqual(parseReference(`x@${SHA}`), {
    domain: 'docker.io',
    path: 'library/x',
    tag: undefined,
    digest: SHA,
  });
});

test('parseReference: invalid references', () => {
  const cases: string[] = [
    '',
    ':tag',
    'Busybox',
    'busybox:',
    'busybox:-bad',
    'busybox@sha256:abc',
    `busybox@sha256:${'AB'.repeat(32)}`,
    'foo//bar',
    'foo/bar/',
    '/foo',
    'foo bar',
    'foo/-bar',
    'foo/bar..baz',
    '-host.com/x',
    'a/' + 'b'.repeat(260),
    `busybox:${'t'.repeat(129)}`,
  ];
  for (const input of cases) {
    assert.throws(
      () => parseReference(input),
      (err: unknown) => err instanceof RuntimeError && err.code === 'InvalidImageName',
      JSON.stringify(input),
    );
  }
});
