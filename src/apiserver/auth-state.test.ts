import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { joinToken, loadOrCreateClusterAuth, parseJoinToken } from './auth-state.js';
import { certificateHash, checkCertificateRequest, newCertificateRequest } from './pki.js';

test('cluster secrets are made once; concurrent first starts agree', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-auth-'));
  const store = SqliteStore.open(join(dir, 'store.db'));
  try {
    const [a, b] = await Promise.all([
      loadOrCreateClusterAuth(store),
      loadOrCreateClusterAuth(store),
    ]);
    assert.deepEqual(a, b);
    assert.deepEqual(await loadOrCreateClusterAuth(store), a);
    const parsed = parseJoinToken(joinToken(a));
    assert.equal(parsed.caHash, certificateHash(a.ca.certPem));
    assert.equal(parsed.secret, a.joinSecret);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed join tokens are refused with the reason', () => {
  const rows: [string, RegExp][] = [
    ['K10abc::server:secret', /not a flyCes join token/],
    [`F10::${'g'.repeat(64)}::s`, /CA hash/],
    [`F10::${'a'.repeat(64)}::`, /secret is empty/],
  ];
  for (const [token, want] of rows) assert.throws(() => parseJoinToken(token), want);
});

test('certificate requests carry their subject and are checked', async () => {
  const { csrPem } = await newCertificateRequest('system:node:a', ['system:nodes']);
  const checked = await checkCertificateRequest(csrPem);
  assert.equal(checked?.commonName, 'system:node:a');
  assert.deepEqual(checked?.organizations, ['system:nodes']);
  assert.equal(await checkCertificateRequest('not a csr'), undefined);
});
