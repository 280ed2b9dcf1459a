import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runtimeStateDir } from './state-dir.js';

test('every spelling of one data dir names the same state root', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-state-dir-'));
  try {
    const real = path.join(dir, 'data');
    mkdirSync(real);
    symlinkSync(real, path.join(dir, 'link'));
    const expected = runtimeStateDir(real);
    // `flyces up` run through a symlink and `flyces down` run with the real path (or the
    // other way round) must find the same records, or down removes live containers' files.
    const spellings = [
      path.join(dir, 'link'),
      `${real}/`,
      path.join(dir, 'link', '..', 'data'),
      path.relative(process.cwd(), real),
    ];
    for (const spelling of spellings) assert.equal(runtimeStateDir(spelling), expected, spelling);
    // A data dir not made yet hashes as it will once made.
    const later = runtimeStateDir(path.join(dir, 'link', 'new'));
    mkdirSync(path.join(real, 'new'));
    assert.equal(later, runtimeStateDir(path.join(real, 'new')));
    assert.notEqual(runtimeStateDir(path.join(dir, 'other')), expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
