import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { ApiError, type StatusReason } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import type { Registry } from './registry.js';

/**
 * Node passwords: which machine a node name belongs to. An agent joining with the cluster's
 * join token also sends a password of its own making (kept in its data dir); the first
 * join of a name records a salted hash of it in a Secret in kube-system, and a later join
 * of the same name must send the same password. So the holder of the join token cannot take
 * over the name (and the pods, secrets and certificates that come with it) of a node that
 * is running, as k3s guards with its node passwords. Deleting the Node frees the name: a
 * join whose password differs is accepted when no Node of that name exists.
 */

const SECRETS = byGroupResource.get('/secrets')!;
const NODES = byGroupResource.get('/nodes')!;
const NAMESPACE = 'kube-system';
const hashWith = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

const isApiError = (err: unknown, reason: StatusReason) =>
  err instanceof ApiError && err.reason === reason;

export const MIN_PASSWORD_LENGTH = 16;
export const MAX_PASSWORD_LENGTH = 256;

export function passwordSecretName(nodeName: string): string {
  return `${nodeName}.node-password.flyces`;
}

async function hashOf(password: string, salt: Buffer): Promise<Buffer> {
  return hashWith(password, salt, 32);
}

export class NodePasswords {
  constructor(private readonly registry: Registry) {}

  /**
   * Accepts `password` for `nodeName` (recording it on first use) or throws Forbidden
   * when the name belongs to another machine that still has its Node.
   */
  async claim(nodeName: string, password: string): Promise<void> {
    const name = passwordSecretName(nodeName);
    for (let attempt = 0; attempt < 3; attempt++) {
      const stored = await this.read(name);
      if (stored === undefined) {
        if (await this.write(name, nodeName, password)) return;
        continue; // another join of this name wrote it first: compare with that one
      }
      if (await matches(stored, password)) return;
      if (await this.nodeExists(nodeName)) {
        throw new ApiError(
          'Forbidden',
          `node name ${nodeName} belongs to another machine (its node password differs); ` +
            'delete that Node to free the name, or join with another --node-name',
        );
      }
      if (await this.write(name, nodeName, password, stored)) return;
    }
    throw new ApiError('Conflict', `node name ${nodeName} is being claimed concurrently; retry`);
  }

  private async read(name: string): Promise<KObject | undefined> {
    try {
      return await this.registry.get(SECRETS, NAMESPACE, name);
    } catch (err) {
      if (isApiError(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  private async nodeExists(nodeName: string): Promise<boolean> {
    try {
      await this.registry.get(NODES, undefined, nodeName);
      return true;
    } catch (err) {
      if (isApiError(err, 'NotFound')) return false;
      throw err;
    }
  }

  /** Creates (or replaces `old`) the password record; false if someone else wrote first. */
  private async write(
    name: string,
    nodeName: string,
    password: string,
    old?: KObject,
  ): Promise<boolean> {
    const salt = randomBytes(16);
    const hash = await hashOf(password, salt);
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: NAMESPACE,
        labels: { 'flyces.io/node': nodeName },
        ...(old ? { resourceVersion: old.metadata.resourceVersion } : {}),
      },
      type: 'flyces.io/node-password',
      data: { salt: salt.toString('base64'), hash: hash.toString('base64') },
    };
    try {
      if (old) await this.registry.update(SECRETS, NAMESPACE, name, secret, undefined);
      else await this.registry.create(SECRETS, NAMESPACE, secret);
      return true;
    } catch (err) {
      if (isApiError(err, 'AlreadyExists') || isApiError(err, 'Conflict')) return false;
      throw err;
    }
  }
}

async function matches(secret: KObject, password: string): Promise<boolean> {
  const data = (secret as { data?: Record<string, string> }).data ?? {};
  const salt = Buffer.from(data.salt ?? '', 'base64');
  const want = Buffer.from(data.hash ?? '', 'base64');
  if (salt.length === 0 || want.length !== 32) return false;
  return timingSafeEqual(await hashOf(password, salt), want);
}
