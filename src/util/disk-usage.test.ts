import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { diskUsage } from './disk-usage.js';

test('disk usage counts allocated blocks once per inode and follows no link', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'flyces-du-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const empty = await diskUsage(root);
  mkdirSync(path.join(root, 'a', 'b'), { recursive: true });
  writeFileSync(path.join(root, 'a', 'b', 'big'), Buffer.alloc(1 << 20, 1));
  const withFile = await diskUsage(root);
  assert.ok(withFile - empty >= 1 << 20, `${withFile - empty} bytes for 1 MiB`);
  assert.ok(withFile - empty < (1 << 20) + 64 * 1024);
  linkSync(path.join(root, 'a', 'b', 'big'), path.join(root, 'hard'));
  symlinkSync('/', path.join(root, 'to-root'));
  const after = await diskUsage(root);
  assert.ok(after - withFile < 16 * 1024, 'a hard link and a symlink add next to nothing');
  assert.equal(await diskUsage(path.join(root, 'missing')), 0);
  writeFileSync(path.join(root, 'sparse'), '');
  assert.ok((await diskUsage(path.join(root, 'sparse'))) < 8192);
});
