import { promises as fs } from 'node:fs';

import type { RegistriesConfig, Rewrite } from './config.js';
import { pullError, RegistryConfigError } from './errors.js';
import type { TlsSettings } from './http.js';

/**
 * Where the blobs of a registry are fetched from: its mirrors from registries.yaml in
 * order, then the registry itself (Docker Hub's API lives at registry-1.docker.io).
 * Loopback registries speak plain HTTP unless their URL says https or registries.yaml gives
 * them TLS settings; every other registry speaks HTTPS unless a mirror endpoint is written
 * as an http:// URL.
 */

/** One place to send the distribution API requests of a pull to. */
export interface Endpoint {
  /** The API root, ending in '/': http://127.0.0.1:5000/v2/. */
  api: URL;
  /** The key of its credentials and configs entry: host with port; docker.io for the Hub. */
  host: string;
  /** Whether it came from registries.yaml rather than the reference itself. */
  mirror: boolean;
  /** The mirror's rewrite rules for repository names; none for the registry itself. */
  rewrites?: Rewrite[];
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';

/** The host part of `host[:port]`, without IPv6 brackets. */
function hostname(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/** Whether `host` (with optional port) names this machine: 127.0.0.0/8, localhost, ::1. */
export function isLoopbackHost(host: string): boolean {
  const name = hostname(host.toLowerCase());
  return name === 'localhost' || name === '::1' || /^127(\.\d{1,3}){3}$/.test(name);
}

/**
 * The scheme of an endpoint written without one: HTTPS, except for a loopback host, which
 * speaks plain HTTP unless registries.yaml gives it TLS settings of its own (configs."host".tls;
 * the "*" entry does not count, so that it cannot turn every loopback registry to HTTPS).
 */
function defaultScheme(host: string, config: RegistriesConfig): 'http' | 'https' {
  if (!isLoopbackHost(host)) return 'https';
  return config.configs.get(host.toLowerCase())?.tls ? 'https' : 'http';
}

function endpointFromUrl(text: string, mirror: boolean, config: RegistriesConfig): Endpoint {
  const hasScheme = /^[a-z]+:\/\//i.test(text);
  const bare = hasScheme ? '' : text.split('/')[0];
  const url = new URL(hasScheme ? text : `${defaultScheme(bare, config)}://${text}`);
  // A path in the endpoint replaces /v2 as the API root, as containerd's hosts do.
  const path = url.pathname.replace(/\/+$/, '');
  const api = new URL(`${url.origin}${path === '' ? '/v2' : path}/`);
  return { api, host: url.host, mirror };
}

function registryEndpoint(domain: string, config: RegistriesConfig): Endpoint {
  if (domain === DOCKER_HUB) {
    return { api: new URL(`https://${DOCKER_HUB_API}/v2/`), host: DOCKER_HUB, mirror: false };
  }
  return { ...endpointFromUrl(domain, false, config), host: domain };
}

/**
 * The endpoints to try for a registry, in order. `includeRegistry` false leaves out the
 * registry itself (k3s's --disable-default-registry-endpoint): only mirrors are used. As in
 * k3s, that applies only to a registry registries.yaml gives mirrors (its own entry or
 * "*"); any other registry is still pulled from directly, as it has nothing else.
 */
export function endpointsFor(
  domain: string,
  config: RegistriesConfig,
  includeRegistry = true,
): Endpoint[] {
  const key = config.mirrors.has(domain) ? domain : '*';
  const urls = config.mirrors.get(key);
  const rewrites = config.rewrites.get(key) ?? [];
  const endpoints: Endpoint[] = (urls ?? []).map((u) => ({
    ...endpointFromUrl(u, true, config),
    rewrites,
  }));
  if (includeRegistry || urls === undefined) endpoints.push(registryEndpoint(domain, config));
  return endpoints;
}

async function readPem(file: string, field: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new RegistryConfigError(`${field}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * The repository to ask an endpoint for: `path` after the first of its rewrite rules that
 * matches. Throws ErrImagePull, naming the rule, when the result is no repository name.
 */
export function repositoryAt(endpoint: Endpoint, path: string): string {
  const rule = endpoint.rewrites?.find((r) => r.pattern.test(path));
  if (!rule) return path;
  const rewritten = path.replace(rule.pattern, rule.replacement);
  const component = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
  if (rewritten.length > 255 || !rewritten.split('/').every((c) => component.test(c))) {
    throw pullError(
      `registries.yaml's ${rule.field} makes "${path}" into "${rewritten.slice(0, 300)}", ` +
        'which is no repository name',
    );
  }
  return rewritten;
}

/** The TLS settings registries.yaml gives an endpoint host, with its files read. */
export async function tlsFor(
  config: RegistriesConfig,
  host: string,
): Promise<TlsSettings | undefined> {
  const tls = (config.configs.get(host) ?? config.configs.get('*'))?.tls;
  if (!tls) return undefined;
  const field = `configs."${host}".tls`;
  return {
    insecureSkipVerify: tls.insecureSkipVerify,
    ca: tls.caFile === undefined ? undefined : await readPem(tls.caFile, `${field}.ca_file`),
    cert:
      tls.certFile === undefined ? undefined : await readPem(tls.certFile, `${field}.cert_file`),
    key: tls.keyFile === undefined ? undefined : await readPem(tls.keyFile, `${field}.key_file`),
  };
}
