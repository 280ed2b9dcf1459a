import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { ApiError, badRequest } from '../api/errors.js';
import type { UserInfo } from './auth.js';
import { NODE_USER_PREFIX, NODES_GROUP, nodeNameOf } from './authz.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, type NodePasswords } from './node-password.js';
import { checkCertificateRequest, issueCert, type CaPair } from './pki.js';
import { readBody } from './request.js';

/**
 * How machines join: two paths served beside the Kubernetes API.
 *
 * `GET /cacerts` answers the cluster CA certificate to anyone. An agent fetches it before
 * it trusts the server, and checks it against the CA hash in its join token, so a server
 * that is not the cluster's is found out before the token's secret is sent.
 *
 * `POST /flyces/v1/node-credentials` signs a node's certificates (a small join endpoint
 * instead of the certificates.k8s.io API). The body is a NodeCredentialsRequest: the
 * node name, its addresses, and two PKCS#10 requests for keys the agent made itself, one
 * for its client certificate (CN=system:node:<name>, O=system:nodes) and one for the
 * serving certificate of its own endpoint. It is allowed with the join secret as bearer
 * token (first join), or with a client certificate of that same node (renewal).
 *
 * A join (not a renewal) also carries the node's password: the first join of a name records
 * it, and a later join of that name with another password is refused while the Node exists
 * (node-password.ts), so the join token alone cannot take over a running node's name.
 * Shortcoming: the serving certificate names whatever addresses the request gives.
 */

export const CACERTS_PATH = '/cacerts';
export const NODE_CREDENTIALS_PATH = '/flyces/v1/node-credentials';

export interface NodeCredentialsRequest {
  nodeName: string;
  /** The node's own secret, made once by the agent; required with the join token. */
  nodePassword?: string;
  /** IP addresses (and DNS names) the node's endpoint is reached at. */
  addresses: string[];
  clientCsr: string;
  servingCsr: string;
}

export interface NodeCredentials {
  /** PEM chain: the node's client certificate, then the cluster CA's. */
  clientCert: string;
  /** PEM chain: the endpoint's serving certificate, then the agent CA's. */
  servingCert: string;
  caCert: string;
}

export interface JoinOptions {
  ca: CaPair;
  /** Signs the agents' serving certificates (see ClusterAuth.agentCa). */
  agentCa: CaPair;
  /** The secret part of the join token. */
  secret: string;
  /** Lifetime of the node certificates issued here. */
  nodeCertLifetimeMs: number;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export class JoinService {
  private readonly secret: Buffer;

  constructor(
    private readonly opts: JoinOptions,
    private readonly passwords: NodePasswords,
  ) {
    this.secret = Buffer.from(opts.secret);
  }

  /** Whether the request is for one of the join paths; those are answered here. */
  handles(url: URL): boolean {
    return url.pathname === CACERTS_PATH || url.pathname === NODE_CREDENTIALS_PATH;
  }

  /** Serves a join path; `user` is who the request authenticated as, if anyone. */
  async serve(
    req: IncomingMessage,
    url: URL,
    res: ServerResponse,
    user: UserInfo | undefined,
  ): Promise<void> {
    if (url.pathname === CACERTS_PATH) {
      if (req.method !== 'GET') throw new ApiError('MethodNotAllowed', 'only GET is served');
      res.writeHead(200, { 'Content-Type': 'application/x-pem-file' }).end(this.opts.ca.certPem);
      return;
    }
    if (req.method !== 'POST') throw new ApiError('MethodNotAllowed', 'only POST is served');
    const body = parseRequest(await readBody(req));
    const joining = this.secretMatches(req.headers.authorization);
    const renewing = user !== undefined && nodeNameOf(user) === body.nodeName;
    if (!joining && !renewing) {
      throw new ApiError(
        'Unauthorized',
        'the join token was not accepted (and no certificate of this node was presented)',
      );
    }
    if (!renewing) {
      const pw = body.nodePassword;
      if (
        typeof pw !== 'string' ||
        pw.length < MIN_PASSWORD_LENGTH ||
        pw.length > MAX_PASSWORD_LENGTH
      )
        throw badRequest(
          `nodePassword must be a string of ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`,
        );
      await this.passwords.claim(body.nodeName, pw);
    }
    const credentials = await this.issue(body);
    res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify(credentials));
  }

  private secretMatches(header: string | undefined): boolean {
    const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!match) return false;
    const given = Buffer.from(match[1]);
    return given.length === this.secret.length && timingSafeEqual(given, this.secret);
  }

  private async issue(body: NodeCredentialsRequest): Promise<NodeCredentials> {
    const user = `${NODE_USER_PREFIX}${body.nodeName}`;
    const client = await checkCertificateRequest(body.clientCsr);
    const serving = await checkCertificateRequest(body.servingCsr);
    if (!client || !serving) throw badRequest('a certificate request is malformed or not signed');
    if (client.commonName !== user || !client.organizations.includes(NODES_GROUP))
      throw badRequest(`the client certificate request must be for CN=${user}, O=${NODES_GROUP}`);
    if (serving.commonName !== user)
      throw badRequest(`the serving certificate request must be for CN=${user}`);
    const lifetimeMs = this.opts.nodeCertLifetimeMs;
    const clientCert = await issueCert(this.opts.ca, {
      commonName: user,
      organizations: [NODES_GROUP],
      usage: 'client',
      lifetimeMs,
      publicKey: client.publicKey,
    });
    const servingCert = await issueCert(this.opts.agentCa, {
      commonName: user,
      hosts: [...body.addresses, body.nodeName],
      usage: 'server',
      lifetimeMs,
      publicKey: serving.publicKey,
    });
    return {
      clientCert: clientCert.certPem,
      servingCert: servingCert.certPem,
      caCert: this.opts.ca.certPem,
    };
  }
}

function parseRequest(raw: Buffer): NodeCredentialsRequest {
  let body: Partial<NodeCredentialsRequest>;
  try {
    body = JSON.parse(raw.toString('utf8')) as Partial<NodeCredentialsRequest>;
  } catch {
    throw badRequest('the node credentials request is not JSON');
  }
  const { nodeName, nodePassword, addresses, clientCsr, servingCsr } = body ?? {};
  if (typeof nodeName !== 'string' || nodeName.length > 253 || !DNS_SUBDOMAIN.test(nodeName))
    throw badRequest('nodeName must be a DNS subdomain');
  if (!Array.isArray(addresses) || addresses.some((a) => typeof a !== 'string' || !isIP(a)))
    throw badRequest('addresses must be a list of IP addresses');
  if (typeof clientCsr !== 'string' || typeof servingCsr !== 'string')
    throw badRequest('clientCsr and servingCsr must be PEM certificate requests');
  return { nodeName, nodePassword, addresses, clientCsr, servingCsr };
}
