import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ApiServer, type ApiServerOptions } from '../../src/apiserver/server.js';
import { ensureServingCert } from '../../src/apiserver/pki.js';
import { KubeClient } from '../../src/client/rest.js';
import { kubeconfigText, writeKubeconfig } from '../../src/cli/kubeconfig.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

export interface TestApiServer {
  server: ApiServer;
  client: KubeClient;
  url: string;
  token: string;
  caPem: string;
  dir: string;
  /** The server's store, for a test that writes what an older flyCes stored. */
  store: SqliteStore;
  /** Writes a kubeconfig for the real kubectl into the server's dir; returns its path. */
  kubeconfig(): string;
  stop(): Promise<void>;
}

/**
 * Starts an API server on a free loopback port with a fresh store in a temp dir; `extra`
 * adds server options (a client CA, say).
 */
export async function startTestApiServer(
  extra: Partial<ApiServerOptions> = {},
): Promise<TestApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-api-'));
  const tls = await ensureServingCert(join(dir, 'tls'), ['127.0.0.1', 'localhost']);
  const store = SqliteStore.open(join(dir, 'store.db'));
  const token = randomBytes(16).toString('hex');
  const server = new ApiServer({ store, tokens: [token], port: 0, tls, ...extra });
  const { port } = await server.start();
  const url = `https://127.0.0.1:${port}`;
  const client = new KubeClient({ server: url, token, caPem: tls.caPem, userAgent: 'test' });
  return {
    server,
    client,
    url,
    token,
    caPem: tls.caPem,
    dir,
    store,
    kubeconfig() {
      const path = join(dir, 'kubeconfig');
      writeKubeconfig(path, kubeconfigText(url, tls.caPem, token, 't'));
      return path;
    },
    async stop() {
      client.close();
      await server.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
