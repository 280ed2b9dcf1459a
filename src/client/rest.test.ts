import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from './rest.js';

/** A plain HTTP server on a Unix socket of its own, answering every request with `answer`. */
async function withServer(
  answer: (res: ServerResponse) => void,
  fn: (client: KubeClient) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-rest-'));
  const socketPath = join(dir, 'api.sock');
  const server = createServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const client = new KubeClient({ server: 'https://unused', token: 't', caPem: '', socketPath });
  try {
    await fn(client);
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a response body in one or many chunks is read whole', async () => {
  const cases: [string, string[]][] = [
    ['one chunk', ['{"a":1}']],
    ['many chunks', ['{"a"', ':', '1', '}']],
  ];
  for (const [what, chunks] of cases) {
    const answer = (res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      for (const c of chunks) res.write(c);
      res.end();
    };
    await withServer(answer, async (client) => {
      assert.deepEqual(await client.request('GET', '/x'), { a: 1 }, what);
    });
  }
});

test('a response cut off before its end fails instead of hanging', async () => {
  const answer = (res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
    res.write('{"a":');
    setTimeout(() => res.destroy(), 20);
  };
  await withServer(answer, async (client) => {
    await assert.rejects(client.request('GET', '/x'));
  });
});
