import { promises as fs } from 'node:fs';

import YAML from 'yaml';

import { isErrno } from '../fsutil.js';
import { decodeAuth, registryHost, type Credentials } from './auth.js';
import { RegistryConfigError } from './errors.js';

/**
 * registries.yaml, in the format k3s users write:
 *
 *   mirrors:
 *     docker.io:
 *       endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com"]
 *   configs:
 *     "127.0.0.1:5000":
 *       auth: { username: u, password: p }      # or { auth: base64("u:p") }
 *       tls: { insecure_skip_verify: false, ca_file: ..., cert_file: ..., key_file: ... }
 *
 * `mirrors` is keyed by the registry of the image reference ("*" for every registry);
 * `configs` by the host of the endpoint spoken to. A mirror's `rewrite` (k3s's, a mapping
 * of regular expressions to replacements) changes the repository asked of its endpoints,
 * never of the registry itself; the first rule, in the file's order, that matches the
 * repository (library/busybox for busybox) applies, with $1 (or ${1}) for its groups; the
 * image keeps its own name on the node. k3s's `identity_token` is refused rather than
 * ignored, so a config never means less than its author thought.
 */

/** One rule of a mirror's `rewrite`. */
export interface Rewrite {
  pattern: RegExp;
  replacement: string;
  /** Where it was written, for messages: mirrors."docker.io".rewrite["^x/(.*)"]. */
  field: string;
}

export interface RegistryTlsConfig {
  insecureSkipVerify: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface RegistryHostConfig {
  auth?: Credentials;
  tls?: RegistryTlsConfig;
}

/** A validated registries.yaml. */
export interface RegistriesConfig {
  /** Mirror endpoint URLs by registry ("docker.io", "*"), in the order they are tried. */
  mirrors: Map<string, string[]>;
  /** The rewrite rules of each registry's mirrors, keyed as `mirrors`. */
  rewrites: Map<string, Rewrite[]>;
  /** Auth and TLS settings by endpoint host (with port). */
  configs: Map<string, RegistryHostConfig>;
}

/** The config of a node without a registries.yaml: no mirrors, no credentials. */
export function emptyRegistriesConfig(): RegistriesConfig {
  return { mirrors: new Map(), rewrites: new Map(), configs: new Map() };
}

type Json = Record<string, unknown>;

class Fields {
  constructor(private readonly source: string) {}

  fail(field: string, why: string): never {
    throw new RegistryConfigError(`${this.source}: ${field} ${why}`);
  }

  object(value: unknown, field: string, allowed: string[]): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(field, 'must be a mapping');
    }
    for (const key of Object.keys(value)) {
      if (key === 'identity_token' || key === 'identitytoken') {
        this.fail(`${field}.${key}`, 'is not supported by flyCes');
      }
      if (allowed.length > 0 && !allowed.includes(key)) this.fail(`${field}.${key}`, 'is unknown');
    }
    return value as Json;
  }

  string(value: unknown, field: string): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value === '') this.fail(field, 'must be a non-empty string');
    return value;
  }

  boolean(value: unknown, field: string): boolean {
    if (value === undefined || value === null) return false;
    if (typeof value !== 'boolean') this.fail(field, 'must be true or false');
    return value;
  }
}

function parseEndpoint(f: Fields, value: unknown, field: string): string {
  const text = f.string(value, field) ?? f.fail(field, 'must be a non-empty string');
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    f.fail(field, `is not a URL: "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') f.fail(field, 'must be http or https');
  if (url.username || url.password) f.fail(field, 'must not hold credentials; use configs');
  if (url.search || url.hash) f.fail(field, 'must not have a query or fragment');
  return text;
}

function parseRewrites(f: Fields, value: unknown, field: string): Rewrite[] {
  if (value === undefined || value === null) return [];
  const rules: Rewrite[] = [];
  for (const [source, replacement] of Object.entries(f.object(value, field, []))) {
    const rule = `${field}[${JSON.stringify(source)}]`;
    if (typeof replacement !== 'string') f.fail(rule, 'must be a string');
    let pattern: RegExp;
    try {
      pattern = new RegExp(source);
    } catch (err) {
      f.fail(rule, `is not a regular expression: ${(err as Error).message}`);
    }
    // Go's ${1} is JavaScript's $1.
    rules.push({ pattern, replacement: replacement.replace(/\$\{(\w+)\}/g, '$$$1'), field: rule });
  }
  return rules;
}

function parseMirrors(f: Fields, value: unknown): Pick<RegistriesConfig, 'mirrors' | 'rewrites'> {
  const mirrors = new Map<string, string[]>();
  const rewrites = new Map<string, Rewrite[]>();
  if (value === undefined || value === null) return { mirrors, rewrites };
  for (const [registry, entry] of Object.entries(f.object(value, 'mirrors', []))) {
    const field = `mirrors."${registry}"`;
    const body = f.object(entry, field, ['endpoint', 'rewrite']);
    if (!Array.isArray(body.endpoint)) f.fail(`${field}.endpoint`, 'must be a list of URLs');
    const list = body.endpoint.map((e, i) => parseEndpoint(f, e, `${field}.endpoint[${i}]`));
    const key = registry === '*' ? '*' : registryHost(registry);
    mirrors.set(key, list);
    rewrites.set(key, parseRewrites(f, body.rewrite, `${field}.rewrite`));
  }
  return { mirrors, rewrites };
}

function parseAuth(f: Fields, value: unknown, field: string): Credentials | undefined {
  if (value === undefined || value === null) return undefined;
  const body = f.object(value, field, ['username', 'password', 'auth']);
  const username = f.string(body.username, `${field}.username`);
  const password = f.string(body.password, `${field}.password`);
  const auth = f.string(body.auth, `${field}.auth`);
  if (username !== undefined && password !== undefined) return { username, password };
  if (username !== undefined || password !== undefined) {
    f.fail(field, 'needs both username and password');
  }
  if (auth === undefined) f.fail(field, 'needs username and password, or auth');
  return decodeAuth(auth) ?? f.fail(`${field}.auth`, 'is not base64 of "username:password"');
}

function parseTls(f: Fields, value: unknown, field: string): RegistryTlsConfig | undefined {
  if (value === undefined || value === null) return undefined;
  const allowed = ['insecure_skip_verify', 'ca_file', 'cert_file', 'key_file'];
  const body = f.object(value, field, allowed);
  const tls: RegistryTlsConfig = {
    insecureSkipVerify: f.boolean(body.insecure_skip_verify, `${field}.insecure_skip_verify`),
    caFile: f.string(body.ca_file, `${field}.ca_file`),
    certFile: f.string(body.cert_file, `${field}.cert_file`),
    keyFile: f.string(body.key_file, `${field}.key_file`),
  };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    f.fail(field, 'needs cert_file and key_file together');
  }
  return tls;
}

function parseConfigs(f: Fields, value: unknown): Map<string, RegistryHostConfig> {
  const configs = new Map<string, RegistryHostConfig>();
  if (value === undefined || value === null) return configs;
  for (const [host, entry] of Object.entries(f.object(value, 'configs', []))) {
    const field = `configs."${host}"`;
    const body = f.object(entry, field, ['auth', 'tls']);
    const config = {
      auth: parseAuth(f, body.auth, `${field}.auth`),
      tls: parseTls(f, body.tls, `${field}.tls`),
    };
    configs.set(host === '*' ? '*' : registryHost(host), config);
  }
  return configs;
}

/**
 * Parses and validates the text of a registries.yaml. Throws RegistryConfigError naming
 * the offending field, prefixed with `source` (the file name, for messages).
 */
export function parseRegistriesConfig(text: string, source = 'registries.yaml'): RegistriesConfig {
  const f = new Fields(source);
  let doc: unknown;
  try {
    doc = YAML.parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new RegistryConfigError(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return emptyRegistriesConfig();
  const top = f.object(doc, 'the document', ['mirrors', 'configs']);
  return { ...parseMirrors(f, top.mirrors), configs: parseConfigs(f, top.configs) };
}

/** Reads and validates a registries.yaml; a missing file means no mirrors and no configs. */
export async function loadRegistriesConfig(file: string | undefined): Promise<RegistriesConfig> {
  if (file === undefined) return emptyRegistriesConfig();
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return emptyRegistriesConfig();
    throw new RegistryConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  return parseRegistriesConfig(text, file);
}
