import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runc } from './runc.js';

test('listing is tried again when a container vanishes while runc reads the root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-runc-'));
  try {
    // A stand-in for runc that fails as runc does on its first call, then answers.
    const fake = join(dir, 'runc');
    const marker = join(dir, 'called');
    writeFileSync(
      fake,
      `#!/bin/sh\nif [ ! -e ${marker} ]; then touch ${marker}; ` +
        `echo 'stat /x/runc/abc: no such file or directory' >&2; exit 1; fi\n` +
        `echo '[{"id":"c1","status":"running"}]'\n`,
    );
    chmodSync(fake, 0o755);
    const list = await new Runc(fake, join(dir, 'root')).list();
    assert.equal(list.get('c1'), 'running');

    const broken = join(dir, 'broken');
    writeFileSync(broken, "#!/bin/sh\necho 'permission denied' >&2; exit 1\n");
    chmodSync(broken, 0o755);
    await assert.rejects(new Runc(broken, join(dir, 'root')).list(), /permission denied/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
