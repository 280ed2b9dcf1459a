import { createHash } from 'node:crypto';

import type { RegistryAuth } from '../runtime.js';
import { isLoopbackHost } from './endpoints.js';
import { pullError, RegistryConfigError } from './errors.js';
import { readBody, send, type TlsSettings } from './http.js';

/**
 * Registry credentials and the two ways registries ask for them (RFC 7235 challenges):
 * `Basic`, answered with the credentials themselves, and `Bearer realm=...,service=...,
 * scope=...`, answered by fetching a token from the realm (with the credentials, if any)
 * and sending that. Tokens are cached per realm, service, scope and credentials until
 * shortly before they expire.
 */

export interface Credentials {
  username: string;
  password: string;
}

const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * The registry host a credentials or config key names: `https://index.docker.io/v1/` →
 * docker.io, `http://127.0.0.1:5000/x` → 127.0.0.1:5000. Lower-cases the host.
 */
export function registryHost(key: string): string {
  const host = key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]
    .toLowerCase();
  return HUB_ALIASES.has(host) ? 'docker.io' : host;
}

/** Decodes base64 "username:password"; undefined when it is not that. */
export function decodeAuth(auth: string): Credentials | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth)) return undefined;
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function credentialsOf(auth: RegistryAuth): Credentials | undefined {
  if (auth.username !== undefined && auth.password !== undefined) {
    return { username: auth.username, password: auth.password };
  }
  return auth.auth === undefined ? undefined : decodeAuth(auth.auth);
}

/** The first credentials among `auths` for the registry `host` (as registryHost names it). */
export function findCredentials(auths: RegistryAuth[], host: string): Credentials | undefined {
  for (const auth of auths) {
    if (registryHost(auth.registry) !== host) continue;
    const creds = credentialsOf(auth);
    if (creds) return creds;
  }
  return undefined;
}

/**
 * A digest of the credentials `auths` offers, host by host in their order: two lists get
 * one fingerprint only if every pull would present the same credentials with either.
 * Carries no secret itself.
 */
export function credentialsFingerprint(auths: RegistryAuth[]): string {
  const hash = createHash('sha256');
  for (const auth of auths) {
    const creds = credentialsOf(auth);
    if (creds)
      hash.update(`${registryHost(auth.registry)}\0${creds.username}\0${creds.password}\n`);
  }
  return hash.digest('hex');
}

/** Every secret string among `auths`, for redaction. */
export function secretsOf(auths: RegistryAuth[]): string[] {
  return auths.flatMap((a) => [a.password, a.auth, credentialsOf(a)?.password]).filter(isText);
}

function isText(value: string | undefined): value is string {
  return typeof value === 'string' && value.length > 0;
}

function checkDockerEntry(key: string, entry: unknown): RegistryAuth {
  const field = `auths["${key}"]`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new RegistryConfigError(`.dockerconfigjson: ${field} must be an object`);
  }
  const { username, password, auth } = entry as Record<string, unknown>;
  for (const [name, value] of Object.entries({ username, password, auth })) {
    if (value !== undefined && typeof value !== 'string') {
      throw new RegistryConfigError(`.dockerconfigjson: ${field}.${name} must be a string`);
    }
  }
  const out: RegistryAuth = { registry: key };
  if (typeof username === 'string' && typeof password === 'string' && username !== '') {
    return { ...out, username, password };
  }
  if (typeof auth === 'string' && auth !== '') {
    if (!decodeAuth(auth)) {
      throw new RegistryConfigError(
        `.dockerconfigjson: ${field}.auth is not base64 of "username:password"`,
      );
    }
    return { ...out, auth };
  }
  throw new RegistryConfigError(
    `.dockerconfigjson: ${field} has neither username and password nor auth`,
  );
}

/**
 * Reads the `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret (the text,
 * already base64-decoded from the Secret's data): `{"auths": {"HOST": {"username",
 * "password"} | {"auth"}}}`. Throws RegistryConfigError naming the field at fault; the
 * message never quotes a value.
 */
export function parseDockerConfigJson(text: string): RegistryAuth[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RegistryConfigError('.dockerconfigjson is not valid JSON');
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    throw new RegistryConfigError('.dockerconfigjson has no "auths" object');
  }
  return Object.entries(auths).map(([key, entry]) => checkDockerEntry(key, entry));
}

/** A parsed WWW-Authenticate challenge. */
export interface Challenge {
  scheme: 'basic' | 'bearer';
  realm?: string;
  service?: string;
  scope?: string;
}

/** Parses the first Basic or Bearer challenge of a WWW-Authenticate header. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  for (const value of Array.isArray(header) ? header : header ? [header] : []) {
    const match = /^\s*(basic|bearer)\b\s*(.*)$/i.exec(value);
    if (!match) continue;
    const params: Record<string, string> = {};
    const pair = /([a-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/gi;
    for (let m = pair.exec(match[2]); m; m = pair.exec(match[2])) {
      params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
    }
    const scheme = match[1].toLowerCase() as Challenge['scheme'];
    return { scheme, realm: params.realm, service: params.service, scope: params.scope };
  }
  return undefined;
}

/**
 * What one ImageStore remembers between pulls: the challenge each endpoint host answered
 * with, and the tokens fetched. Safe to share by concurrent pulls.
 */
export class AuthCache {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, { token: string; expires: number }>();

  challenge(host: string): Challenge | undefined {
    return this.challenges.get(host);
  }

  rememberChallenge(host: string, challenge: Challenge): void {
    this.challenges.set(host, challenge);
  }

  token(key: string): string | undefined {
    const entry = this.tokens.get(key);
    if (entry && entry.expires > Date.now()) return entry.token;
    this.tokens.delete(key);
    return undefined;
  }

  rememberToken(key: string, token: string, lifetimeSeconds: number): void {
    // Renew early so a token does not run out between its check and its use.
    const ms = lifetimeSeconds * 1000;
    this.tokens.set(key, { token, expires: Date.now() + Math.max(ms - 10_000, ms / 2) });
  }
}

const MAX_TOKEN_RESPONSE = 1 << 20;
const DEFAULT_TOKEN_SECONDS = 60;

function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/**
 * The TLS settings registries.yaml gives a host (with port), if it gives any; the token
 * realm of a registry may be on another host than the registry.
 */
export type TlsLookup = (host: string) => Promise<TlsSettings | undefined>;

/** Answers the auth challenges of one endpoint host for the pulls of one repository. */
export class Authorizer {
  constructor(
    private readonly host: string,
    private readonly creds: Credentials | undefined,
    private readonly cache: AuthCache,
    private readonly timeoutMs: number,
    private readonly tls?: TlsSettings,
    private readonly tlsOf?: TlsLookup,
  ) {}

  /** The user name of the credentials offered to this host, if any (it is no secret). */
  get user(): string | undefined {
    return this.creds?.username;
  }

  /** The Authorization header to send up front, if an earlier challenge tells which. */
  current(scope: string): string | undefined {
    const challenge = this.cache.challenge(this.host);
    if (challenge?.scheme === 'basic') return this.creds && basicHeader(this.creds);
    if (challenge?.scheme !== 'bearer') return undefined;
    const token = this.cache.token(this.tokenKey(challenge, scope));
    return token && `Bearer ${token}`;
  }

  /** The Authorization header that answers a 401's challenge; throws when none can. */
  async answer(header: string | string[] | undefined, scope: string): Promise<string> {
    const challenge = parseChallenge(header);
    if (!challenge) {
      throw pullError(`unauthorized: ${this.host} asks for an authentication scheme flyCes lacks`);
    }
    this.cache.rememberChallenge(this.host, challenge);
    if (challenge.scheme === 'basic') {
      if (!this.creds) {
        throw pullError(`unauthorized: ${this.host} requires credentials and none were given`);
      }
      return basicHeader(this.creds);
    }
    return `Bearer ${await this.fetchToken(challenge, scope)}`;
  }

  private tokenKey(challenge: Challenge, scope: string): string {
    const who = this.creds
      ? createHash('sha256').update(`${this.creds.username}\0${this.creds.password}`).digest('hex')
      : 'anonymous';
    return [challenge.realm, challenge.service, scope, who].join('\n');
  }

  private tokenUrl(challenge: Challenge, scope: string): URL {
    let url: URL;
    try {
      url = new URL(challenge.realm ?? '');
    } catch {
      throw pullError(`unauthorized: ${this.host} names no valid token realm`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw pullError(`unauthorized: ${this.host} names a token realm that is not HTTP(S)`);
    }
    if (challenge.service) url.searchParams.set('service', challenge.service);
    url.searchParams.set('scope', challenge.scope ?? scope);
    return url;
  }

  /**
   * TLS settings for a token realm: the registry's own on its host; elsewhere those
   * registries.yaml gives the realm's host, else the registry's trust (its CA, or skipping
   * verification), as containerd asks the realm with the registry's client. Decided: the
   * registry's client certificate is not shown to another host.
   */
  private async realmTls(url: URL): Promise<TlsSettings | undefined> {
    if (url.protocol !== 'https:') return undefined;
    if (url.host === this.host) return this.tls;
    const own = await this.tlsOf?.(url.host);
    if (own) return own;
    return this.tls && { ca: this.tls.ca, insecureSkipVerify: this.tls.insecureSkipVerify };
  }

  private async fetchToken(challenge: Challenge, scope: string): Promise<string> {
    const url = this.tokenUrl(challenge, scope);
    const headers: Record<string, string> = {};
    // Credentials go only where nobody on the wire can read them.
    if (this.creds && (url.protocol === 'https:' || isLoopbackHost(url.host))) {
      headers.Authorization = basicHeader(this.creds);
    }
    const res = await send({
      url,
      headers,
      timeoutMs: this.timeoutMs,
      tls: await this.realmTls(url),
    });
    const body = await readBody(res, MAX_TOKEN_RESPONSE, `token response from ${url.host}`);
    if (res.status === 401 || res.status === 403) {
      throw pullError(`unauthorized: the token service ${url.host} refused the credentials`);
    }
    if (res.status !== 200) {
      throw pullError(`the token service ${url.host} answered HTTP ${res.status}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw pullError(`the token service ${url.host} answered with invalid JSON`);
    }
    // JSON that is no object (null, a string) carries no token either.
    const fields = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
    };
    const token = typeof fields.token === 'string' ? fields.token : fields.access_token;
    if (typeof token !== 'string' || token === '') {
      throw pullError(`the token service ${url.host} answered without a token`);
    }
    const expires = typeof fields.expires_in === 'number' ? fields.expires_in : 0;
    this.cache.rememberToken(
      this.tokenKey(challenge, scope),
      token,
      Math.max(expires, DEFAULT_TOKEN_SECONDS),
    );
    return token;
  }
}
