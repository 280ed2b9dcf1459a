import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { BearerTokens } from '../util/bearer.js';

/**
 * Authentication: who sent a request. Two ways are accepted, as kube-apiserver does:
 * - a bearer token from the configured list: the cluster admin (`system:admin`, group
 *   `system:masters`);
 * - a TLS client certificate that chains to the cluster CA (Node's TLS layer checks the
 *   chain and the validity dates when the server asks for client certificates) and is
 *   meant for client authentication: user = subject CN, groups = subject O values.
 * Anything else is anonymous, which the API server refuses with 401.
 */

export interface UserInfo {
  name: string;
  groups: string[];
}

export const ADMIN_USER: UserInfo = { name: 'system:admin', groups: ['system:masters'] };

/** The extended key usage OID of TLS client authentication. */
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export class Authenticator {
  private readonly tokens: BearerTokens;

  constructor(tokens: string[]) {
    this.tokens = new BearerTokens(tokens);
  }

  /** The user a request authenticates as, or undefined when it carries no valid credential. */
  authenticate(req: IncomingMessage): UserInfo | undefined {
    if (req.headers.authorization !== undefined) {
      return this.tokens.accepts(req.headers.authorization) ? ADMIN_USER : undefined;
    }
    return certificateUser(req.socket as TLSSocket);
  }
}

/** The user named by a verified client certificate on a TLS socket. */
export function certificateUser(socket: TLSSocket): UserInfo | undefined {
  if (!socket.authorized || typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert?.subject) return undefined;
  if (cert.ext_key_usage && !cert.ext_key_usage.includes(CLIENT_AUTH_OID)) return undefined;
  const name = firstValue(cert.subject.CN);
  if (!name) return undefined;
  return { name, groups: allValues(cert.subject.O) };
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function allValues(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}
