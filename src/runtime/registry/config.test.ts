import assert from 'node:assert/strict';
import { test } from 'node:test';

import { emptyRegistriesConfig, parseRegistriesConfig } from './config.js';
import { endpointsFor, isLoopbackHost, repositoryAt } from './endpoints.js';
import { RegistryConfigError } from './errors.js';

test('parses a k3s registries.yaml', () => {
  const config = parseRegistriesConfig(`
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "mirror.example.com/v2/hub"]
configs:
  "127.0.0.1:5000":
    auth: { auth: "${Buffer.from('u:p:w').toString('base64')}" }
  https://mirror.example.com/:
    auth: { username: a, password: b }
    tls: { insecure_skip_verify: true }
`);
  assert.deepEqual(config.configs.get('127.0.0.1:5000')?.auth, { username: 'u', password: 'p:w' });
  assert.equal(config.configs.get('mirror.example.com')?.tls?.insecureSkipVerify, true);

  const endpoints = endpointsFor('docker.io', config).map((e) => [e.api.href, e.host, e.mirror]);
  assert.deepEqual(endpoints, [
    ['http://127.0.0.1:5000/v2/', '127.0.0.1:5000', true],
    ['https://mirror.example.com/v2/hub/', 'mirror.example.com', true],
    ['https://registry-1.docker.io/v2/', 'docker.io', false],
  ]);
  assert.equal(endpointsFor('docker.io', config, false).length, 2);
});

test('refuses a bad registries.yaml, naming the field', () => {
  const cases: [string, RegExp][] = [
    ['mirrors: [1]', /mirrors must be a mapping/],
    ['mirrors:\n  docker.io:\n    endpoint: x', /mirrors\."docker\.io"\.endpoint must be a list/],
    ['mirrors:\n  docker.io:\n    endpoint: [5]', /mirrors\."docker\.io"\.endpoint\[0\] must be/],
    ['mirrors:\n  d.io:\n    endpoint: ["ftp://x"]', /endpoint\[0\] must be http or https/],
    ['mirrors:\n  d.io:\n    endpoint: []\n    rewrite: []', /"d\.io"\.rewrite must be a mapping/],
    [
      'mirrors:\n  d.io:\n    endpoint: []\n    rewrite: { "(": x }',
      /rewrite\["\("\] is not a regular/,
    ],
    [
      'mirrors:\n  d.io:\n    endpoint: []\n    rewrite: { "a": 1 }',
      /rewrite\["a"\] must be a string/,
    ],
    ['configs:\n  h:\n    auth: { identitytoken: x }', /auth\.identitytoken is not supported/],
    ['configs:\n  h:\n    auth: { username: a }', /configs\."h"\.auth needs both username/],
    ['configs:\n  h:\n    auth: { auth: "!!" }', /configs\."h"\.auth\.auth is not base64/],
    ['configs:\n  h:\n    tls: { insecure_skip_verify: "yes" }', /insecure_skip_verify must be/],
    ['configs:\n  h:\n    tls: { cert_file: /c }', /needs cert_file and key_file together/],
    ['configs:\n  h:\n    tsl: {}', /configs\."h"\.tsl is unknown/],
    ['mirror: {}', /the document\.mirror is unknown/],
    ['a: [', /not valid YAML/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(
      () => parseRegistriesConfig(text, 'reg.yaml'),
      (err: unknown) => err instanceof RegistryConfigError && pattern.test(err.message),
      text,
    );
  }
  assert.doesNotThrow(() =>
    parseRegistriesConfig('configs:\n  h:\n    auth: { password: x, username: secret }'),
  );
});

test('knows loopback hosts', () => {
  const cases: [string, boolean][] = [
    ['127.0.0.1:5000', true],
    ['127.1.2.3', true],
    ['localhost:80', true],
    ['[::1]:5000', true],
    ['::1', true],
    ['128.0.0.1', false],
    ['127.0.0.1.example.com', false],
    ['registry.local', false],
  ];
  for (const [host, loopback] of cases) assert.equal(isLoopbackHost(host), loopback, host);
  const bare = endpointsFor('localhost:5000', emptyRegistriesConfig());
  assert.equal(bare[0].api.href, 'http://localhost:5000/v2/');
  const remote = endpointsFor('quay.io', emptyRegistriesConfig());
  assert.equal(remote[0].api.href, 'https://quay.io/v2/');
});

test('a loopback registry with TLS settings of its own is spoken to over HTTPS', () => {
  const config = parseRegistriesConfig(`
mirrors:
  registry.example.com:
    endpoint: ["127.0.0.1:17960", "127.0.0.1:17961", "http://127.0.0.1:17962"]
configs:
  "127.0.0.1:17960":
    tls: { ca_file: /ca.crt }
  "127.0.0.1:17963":
    tls: { insecure_skip_verify: true }
  "127.0.0.1:17964":
    auth: { username: u, password: p }
  "*":
    tls: { ca_file: /ca.crt }
`);
  const apis = (domain: string) => endpointsFor(domain, config).map((e) => e.api.href);
  assert.deepEqual(apis('registry.example.com'), [
    'https://127.0.0.1:17960/v2/',
    'http://127.0.0.1:17961/v2/',
    'http://127.0.0.1:17962/v2/',
    'https://registry.example.com/v2/',
  ]);
  assert.deepEqual(apis('127.0.0.1:17963'), ['https://127.0.0.1:17963/v2/']);
  assert.deepEqual(apis('127.0.0.1:17964'), ['http://127.0.0.1:17964/v2/']);
});

test('without the default endpoint, only registries with mirrors lose it, as in k3s', () => {
  const config = parseRegistriesConfig(
    'mirrors:\n  mirrored.example.com:\n    endpoint: ["m.example.com"]\n',
  );
  const apis = (domain: string, c = config) =>
    endpointsFor(domain, c, false).map((e) => e.api.href);
  assert.deepEqual(apis('mirrored.example.com'), ['https://m.example.com/v2/']);
  assert.deepEqual(apis('other.example.com'), ['https://other.example.com/v2/']);
  const wildcard = parseRegistriesConfig('mirrors:\n  "*":\n    endpoint: ["m.example.com"]\n');
  assert.deepEqual(apis('other.example.com', wildcard), ['https://m.example.com/v2/']);
  const empty = parseRegistriesConfig('mirrors:\n  mirrored.example.com:\n    endpoint: []\n');
  assert.deepEqual(apis('mirrored.example.com', empty), []);
});

test('a mirror rewrites repository names, as k3s does; the registry itself never', () => {
  const config = parseRegistriesConfig(`
mirrors:
  docker.io:
    endpoint: ["127.0.0.1:17965"]
    rewrite:
      "^rancher/(.*)": "mirrorproject/rancher-images/$1"
      "^library/(.*)": "hub/\${1}"
      "^bad/(.*)": "Bad/$1"
`);
  const [mirror, registry] = endpointsFor('docker.io', config);
  const cases: [string, string][] = [
    ['rancher/coredns-coredns', 'mirrorproject/rancher-images/coredns-coredns'],
    ['library/busybox', 'hub/busybox'],
    ['other/x', 'other/x'],
  ];
  for (const [path, want] of cases) {
    assert.equal(repositoryAt(mirror, path), want, path);
    assert.equal(repositoryAt(registry, path), path, `${path} at the registry`);
  }
  assert.throws(
    () => repositoryAt(mirror, 'bad/x'),
    /registries\.yaml's mirrors\."docker\.io"\.rewrite\["\^bad\/\(\.\*\)"\] makes "bad\/x" into "Bad\/x", which is no repository name/,
  );
});
