import { randomBytes } from 'node:crypto';
import { StoreError, type Store } from '../store/store.js';
import { certificateHash, newClusterCa, type CaPair } from './pki.js';

/**
 * The cluster's shared secrets: the CA (certificate and key), the CA of the agents'
 * serving certificates, the admin token and the join secret. They live in the store under
 * a key outside `/registry/`, so no API request can read them, and every API server on the
 * same store uses the same ones. The first server to start makes them and writes them with
 * an atomic create; a server that loses that race (AlreadyExists) reads the winner's
 * instead, so two servers starting at once still agree.
 *
 * Shortcoming: the secrets are stored in the clear; whoever can read the store (the
 * SQLite file, or etcd without client auth) holds the CA key.
 */

export const AUTH_STATE_KEY = '/flyces/cluster-auth';

export interface ClusterAuth {
  ca: CaPair;
  /**
   * Signs only the agents' serving certificates, and only the API servers trust it (to
   * reach agents). Were they signed by the cluster CA, a node could ask for a serving
   * certificate naming an API server's address and pass itself off as that server.
   */
  agentCa: CaPair;
  /** Bearer token with full access (user `system:admin`, group `system:masters`). */
  adminToken: string;
  /** The secret part of the join token. */
  joinSecret: string;
}

/** Loads the cluster's secrets from the store, making them on the first start. */
export async function loadOrCreateClusterAuth(store: Store): Promise<ClusterAuth> {
  const existing = await store.get(AUTH_STATE_KEY);
  if (existing) return JSON.parse(existing.value) as ClusterAuth;
  const fresh: ClusterAuth = {
    ca: await newClusterCa(),
    agentCa: await newClusterCa('flyces-agent-ca'),
    adminToken: randomBytes(24).toString('hex'),
    joinSecret: randomBytes(24).toString('hex'),
  };
  try {
    await store.create(AUTH_STATE_KEY, JSON.stringify(fresh));
    return fresh;
  } catch (err) {
    if (!(err instanceof StoreError && err.code === 'AlreadyExists')) throw err;
    const winner = await store.get(AUTH_STATE_KEY);
    if (!winner) throw new Error('cluster secrets vanished from the store while starting');
    return JSON.parse(winner.value) as ClusterAuth;
  }
}

/** Prefix of flyCes join tokens (format version 1). */
export const JOIN_TOKEN_PREFIX = 'F10';

/** `F10::<sha256 of the CA certificate>::<secret>`, what `flyces agent --token` takes. */
export function joinToken(auth: ClusterAuth): string {
  return `${JOIN_TOKEN_PREFIX}::${certificateHash(auth.ca.certPem)}::${auth.joinSecret}`;
}

export interface ParsedJoinToken {
  caHash: string;
  secret: string;
}

/** Splits a join token; throws saying what is wrong with it. */
export function parseJoinToken(token: string): ParsedJoinToken {
  const parts = token.trim().split('::');
  if (parts.length !== 3 || parts[0] !== JOIN_TOKEN_PREFIX)
    throw new Error(`not a flyCes join token (expected ${JOIN_TOKEN_PREFIX}::<ca hash>::<secret>)`);
  const [, caHash, secret] = parts;
  if (!/^[0-9a-f]{64}$/.test(caHash))
    throw new Error('join token: the CA hash is not a SHA-256 in hex');
  if (!secret) throw new Error('join token: the secret is empty');
  return { caHash, secret };
}
