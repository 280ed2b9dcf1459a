import assert from 'node:assert/strict';
import { test } from 'node:test';

import { findCredentials, parseChallenge, parseDockerConfigJson, registryHost } from './auth.js';
import { redact, RegistryConfigError } from './errors.js';

test('reads a .dockerconfigjson', () => {
  const auth = Buffer.from('me:pa:ss').toString('base64');
  const auths = parseDockerConfigJson(
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth },
        'registry.example.com:5000': { username: 'u', password: 'p', email: 'x@y' },
      },
    }),
  );
  assert.deepEqual(findCredentials(auths, 'docker.io'), { username: 'me', password: 'pa:ss' });
  assert.deepEqual(findCredentials(auths, 'registry.example.com:5000'), {
    username: 'u',
    password: 'p',
  });
  assert.equal(findCredentials(auths, 'quay.io'), undefined);
});

test('refuses a bad .dockerconfigjson without quoting it', () => {
  const cases: [string, RegExp][] = [
    ['{', /is not valid JSON/],
    ['{"auth": {}}', /has no "auths" object/],
    ['{"auths": {"h": 1}}', /auths\["h"\] must be an object/],
    ['{"auths": {"h": {"auth": "c2VjcmV0"}}}', /auths\["h"\]\.auth is not base64 of/],
    ['{"auths": {"h": {"username": "u"}}}', /auths\["h"\] has neither/],
    ['{"auths": {"h": {"password": 5}}}', /auths\["h"\]\.password must be a string/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(
      () => parseDockerConfigJson(text),
      (err: unknown) =>
        err instanceof RegistryConfigError &&
        pattern.test(err.message) &&
        !/c2Vj/.test(err.message),
      text,
    );
  }
});

test('normalises registry keys', () => {
  const cases: [string, string][] = [
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['http://127.0.0.1:5000/x', '127.0.0.1:5000'],
    ['Quay.IO', 'quay.io'],
  ];
  for (const [key, host] of cases) assert.equal(registryHost(key), host, key);
});

test('parses WWW-Authenticate challenges', () => {
  assert.deepEqual(
    parseChallenge(
      'Bearer realm="https://auth.example.com/token",service="reg",scope="repository:a/b:pull"',
    ),
    {
      scheme: 'bearer',
      realm: 'https://auth.example.com/token',
      service: 'reg',
      scope: 'repository:a/b:pull',
    },
  );
  assert.deepEqual(parseChallenge(['Negotiate', 'Basic realm=x']), {
    scheme: 'basic',
    realm: 'x',
    service: undefined,
    scope: undefined,
  });
  assert.equal(parseChallenge('Negotiate abc'), undefined);
  assert.equal(parseChallenge(undefined), undefined);
});

test('redacts secrets', () => {
  assert.equal(redact('bad pw hunter2 here', ['hunter2', '']), 'bad pw *** here');
});
