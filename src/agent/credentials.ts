import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import {
  CACERTS_PATH,
  NODE_CREDENTIALS_PATH,
  type NodeCredentials,
  type NodeCredentialsRequest,
} from '../apiserver/auth-join.js';
import { parseJoinToken } from '../apiserver/auth-state.js';
import { NODE_USER_PREFIX, NODES_GROUP } from '../apiserver/authz.js';
import { certificateHash, certificateWindow, newCertificateRequest } from '../apiserver/pki.js';
import type { Logger } from '../log.js';

/**
 * A joined node's credentials: the cluster CA, a client certificate for the API server
 * (CN=system:node:<name>, O=system:nodes) and a serving certificate for the agent's own
 * endpoint, each with a key the agent made and never sent. They are kept in
 * `<data dir>/pki/` (keys 0600), so a restarted agent needs no join token.
 *
 * Joining: the CA is fetched from `/cacerts` without trusting the server, and accepted only
 * if its SHA-256 is the one in the join token; from then on the server must present a
 * certificate of that CA. Then the join secret buys the two certificates. The join also
 * sends the node's password (`pki/node-password`, made on the first join and kept): the
 * server ties the node name to it, so no other machine can join under this name.
 *
 * Renewal: once two thirds of the client certificate's lifetime have passed, new keys are
 * made and certified with the current client certificate as credential; `onRenewed`
 * hands the new pair to whoever uses them. A failed renewal is retried every few seconds
 * until the certificate runs out.
 */

export interface CertPair {
  certPem: string;
  keyPem: string;
}

export interface NodeCredentialSet {
  caPem: string;
  client: CertPair;
  serving: CertPair;
}

export interface CredentialOptions {
  /** API server URL, e.g. https://10.0.0.1:6443. */
  server: string;
  nodeName: string;
  /** Addresses the serving certificate names (the node IP). */
  addresses: string[];
  dataDir: string;
  log: Logger;
}

const FILES = {
  ca: 'ca.crt',
  clientCert: 'client.crt',
  clientKey: 'client.key',
  servingCert: 'serving.crt',
  servingKey: 'serving.key',
};
const RETRY_MS = 3_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A request to the join endpoints failed; the message says why, for the person joining. */
export class JoinError extends Error {}

export class NodeCredentialManager {
  private readonly dir: string;
  private timer?: NodeJS.Timeout;
  private current?: NodeCredentialSet;

  constructor(private readonly opts: CredentialOptions) {
    this.dir = join(opts.dataDir, 'pki');
  }

  get credentials(): NodeCredentialSet {
    if (!this.current) throw new Error('node credentials are not loaded yet');
    return this.current;
  }

  /**
   * The stored credentials when they are for this server's cluster and still valid;
   * otherwise joins with `token` (and throws JoinError without one, or when refused).
   */
  async load(token: string | undefined): Promise<NodeCredentialSet> {
    const stored = this.readStored();
    // A certificate near its end is still used: renewal then starts at once.
    const usable = stored && certificateWindow(stored.client.certPem).notAfter > Date.now() + 1000;
    if (stored && usable && (!token || parseJoinToken(token).caHash === certHash(stored))) {
      this.current = stored;
      this.opts.log.info('using the stored node credentials');
      return stored;
    }
    if (!token)
      throw new JoinError('no valid node credentials in the data dir: --token is needed to join');
    this.current = await this.join(token);
    return this.current;
  }

  /** Starts renewing at two thirds of the lifetime; `onRenewed` gets each new set. */
  startRenewal(onRenewed: (set: NodeCredentialSet) => void): void {
    const { notBefore, notAfter } = certificateWindow(this.credentials.client.certPem);
    const at = notBefore + ((notAfter - notBefore) * 2) / 3;
    this.schedule(Math.max(0, at - Date.now()), onRenewed);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number, onRenewed: (set: NodeCredentialSet) => void): void {
    if (ms > MAX_TIMER_MS) {
      // Timers hold at most ~24.8 days; a longer wait is taken in steps.
      this.timer = setTimeout(() => this.startRenewal(onRenewed), MAX_TIMER_MS);
      return;
    }
    this.timer = setTimeout(() => {
      this.renew().then(
        (set) => {
          onRenewed(set);
          if (this.timer) this.startRenewal(onRenewed);
        },
        (err: Error) => {
          this.opts.log.warn({ err: err.message }, 'certificate renewal failed; retrying');
          if (this.timer) this.schedule(RETRY_MS, onRenewed);
        },
      );
    }, ms);
  }

  private async join(token: string): Promise<NodeCredentialSet> {
    const { caHash, secret } = parseJoinToken(token);
    const caPem = await this.fetchCa();
    const got = certificateHash(caPem);
    if (got !== caHash) {
      throw new JoinError(
        `the server's CA (sha256 ${got}) is not the one the join token names (${caHash}); ` +
          'refusing to join',
      );
    }
    const set = await this.requestCredentials(caPem, { token: secret }, this.nodePassword());
    this.opts.log.info('joined the cluster: node credentials issued');
    return set;
  }

  private async renew(): Promise<NodeCredentialSet> {
    const old = this.credentials;
    const set = await this.requestCredentials(old.caPem, { cert: old.client });
    this.current = set;
    const { notAfter } = certificateWindow(set.client.certPem);
    this.opts.log.info({ notAfter: new Date(notAfter).toISOString() }, 'node certificates renewed');
    return set;
  }

  /** This machine's node password: read from the data dir, made there on first use. */
  private nodePassword(): string {
    const path = join(this.dir, 'node-password');
    if (existsSync(path)) return readFileSync(path, 'utf8').trim();
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const password = randomBytes(32).toString('hex');
    writeFileSync(path, `${password}\n`, { mode: 0o600 });
    return password;
  }

  private async requestCredentials(
    caPem: string,
    auth: { token?: string; cert?: CertPair },
    nodePassword?: string,
  ): Promise<NodeCredentialSet> {
    const user = `${NODE_USER_PREFIX}${this.opts.nodeName}`;
    const client = await newCertificateRequest(user, [NODES_GROUP]);
    const serving = await newCertificateRequest(user);
    const body: NodeCredentialsRequest = {
      nodeName: this.opts.nodeName,
      ...(nodePassword ? { nodePassword } : {}),
      addresses: this.opts.addresses,
      clientCsr: client.csrPem,
      servingCsr: serving.csrPem,
    };
    const answer = await call(this.opts.server, 'POST', NODE_CREDENTIALS_PATH, {
      ca: caPem,
      body: JSON.stringify(body),
      ...auth,
    });
    const issued = JSON.parse(answer) as NodeCredentials;
    const set: NodeCredentialSet = {
      caPem,
      client: { certPem: issued.clientCert, keyPem: client.keyPem },
      serving: { certPem: issued.servingCert, keyPem: serving.keyPem },
    };
    this.store(set);
    return set;
  }

  private async fetchCa(): Promise<string> {
    // Not trusted yet: the answer is only accepted if it hashes to the token's CA hash.
    return call(this.opts.server, 'GET', CACERTS_PATH, { insecure: true });
  }

  private readStored(): NodeCredentialSet | undefined {
    const path = (f: string) => join(this.dir, f);
    if (!Object.values(FILES).every((f) => existsSync(path(f)))) return undefined;
    const read = (f: string) => readFileSync(path(f), 'utf8');
    return {
      caPem: read(FILES.ca),
      client: { certPem: read(FILES.clientCert), keyPem: read(FILES.clientKey) },
      serving: { certPem: read(FILES.servingCert), keyPem: read(FILES.servingKey) },
    };
  }

  private store(set: NodeCredentialSet): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const write = (f: string, data: string) => {
      const tmp = join(this.dir, `${f}.tmp-${process.pid}`);
      writeFileSync(tmp, data, { mode: 0o600 });
      renameSync(tmp, join(this.dir, f));
    };
    write(FILES.ca, set.caPem);
    write(FILES.clientKey, set.client.keyPem);
    write(FILES.clientCert, set.client.certPem);
    write(FILES.servingKey, set.serving.keyPem);
    write(FILES.servingCert, set.serving.certPem);
  }
}

function certHash(set: NodeCredentialSet): string {
  return certificateHash(set.caPem);
}

interface CallOptions {
  ca?: string;
  insecure?: boolean;
  token?: string;
  cert?: CertPair;
  body?: string;
}

/** One HTTPS request to the API server; resolves with the body of a 2xx answer. */
function call(server: string, method: string, path: string, o: CallOptions): Promise<string> {
  const url = new URL(path, server);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) headers['Content-Type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers,
        ca: o.ca,
        rejectUnauthorized: !o.insecure,
        cert: o.cert?.certPem,
        key: o.cert?.keyPem,
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) < 300) return resolve(text);
          reject(new JoinError(`${method} ${url.pathname}: ${res.statusCode} ${statusText(text)}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) =>
      reject(new JoinError(`cannot reach the server at ${server}: ${err.message}`)),
    );
    req.end(o.body);
  });
}

function statusText(text: string): string {
  try {
    return (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {
    return text;
  }
}
