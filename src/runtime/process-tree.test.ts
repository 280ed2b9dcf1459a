import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { childrenOf, killProcessTree } from './process-tree.js';
import { hideValues } from './runtime.js';

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Whether a process runs: a zombie (killed, not yet reaped by init) does not. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

test('killProcessTree ends a process and the children and grandchildren it started', async () => {
  // A shell with a background sleep and a subshell that starts one more.
  const script = 'sleep 61 & (sleep 62 & wait) & wait';
  const sh = spawn('sh', ['-c', script], { stdio: 'ignore' });
  const exited = new Promise((resolve) => sh.on('exit', resolve));
  let tree: number[] = [];
  await until('the tree to be started', async () => {
    const children = await childrenOf(sh.pid!);
    const grandchildren = (await Promise.all(children.map(childrenOf))).flat();
    tree = [...children, ...grandchildren];
    return tree.length >= 3;
  });
  await killProcessTree(sh.pid!);
  await exited;
  await until('every descendant to end', async () => tree.every((pid) => !alive(pid)));
});

test('killProcessTree of a process that is gone does nothing', async () => {
  const sh = spawn('true', { stdio: 'ignore' });
  await new Promise((resolve) => sh.on('exit', resolve));
  await killProcessTree(sh.pid!);
  assert.deepEqual(await childrenOf(sh.pid!), []);
});

test('hideValues', () => {
  const cases: [string, string[], string][] = [
    ['exec: "Top-Secret": not found', ['Top-Secret'], 'exec: "[hidden]": not found'],
    ['exec: "a\\"quoted": not found', ['a"quoted'], 'exec: "[hidden]": not found'],
    ['line1\\nline2 and line1\nline2', ['line1\nline2'], '[hidden] and [hidden]'],
    ['the key abc stays', ['abc'], 'the key abc stays'],
    ['longest first: abcdefgh', ['abcd', 'abcdefgh'], 'longest first: [hidden]'],
    ['nothing to hide', [], 'nothing to hide'],
  ];
  for (const [text, values, want] of cases) assert.equal(hideValues(text, values), want, text);
});
