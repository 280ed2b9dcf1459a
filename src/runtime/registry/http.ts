import http from 'node:http';
import https from 'node:https';

import { isLoopbackHost } from './endpoints.js';
import { RuntimeError } from '../runtime.js';
import { pullError } from './errors.js';

/**
 * One HTTP(S) request at a time for the registry client, on node:http. Every request has
 * an idle timeout that covers connecting, waiting for the headers and reading the body.
 * Redirects (registries send blob downloads to storage) are followed a few times; the
 * Authorization header and client TLS settings never travel to another origin.
 */

/** TLS settings for one registry host, from registries.yaml. */
export interface TlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipVerify?: boolean;
}

export interface HttpRequest {
  url: URL;
  headers?: Record<string, string>;
  tls?: TlsSettings;
  /** Milliseconds without progress (connect, headers, body bytes) before giving up. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  /** The URL that answered, after redirects. */
  url: URL;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Node's codes for a server certificate signed by no CA this process trusts. */
const UNTRUSTED_CERT = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/**
 * The TLS alerts a server sends when it wants a client certificate it was not given (TLS
 * 1.2 says "bad certificate", 1.3 "certificate required") or does not accept the one given.
 */
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
]);

/**
 * An error as the user reads it: its code and message, and for the TLS failures that
 * registries.yaml settles, which setting of the endpoint `host` does.
 */
export function describe(err: Error, host?: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  const setting = `registries.yaml's configs."${host}".tls`;
  if (host && code && UNTRUSTED_CERT.has(code)) {
    return (
      `${code}: the registry's certificate is not signed by a CA this node trusts ` +
      `(${err.message}); name its CA in ${setting}.ca_file, or set insecure_skip_verify there`
    );
  }
  if (host && code && CLIENT_CERT_REFUSED.has(code)) {
    // OpenSSL's own text here is its source file and line: the alert's name says it all.
    return (
      `${code}: the registry refused the TLS handshake: it wants a client certificate it ` +
      `accepts; give one in ${setting}.cert_file and key_file`
    );
  }
  return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
}

/** Sends one GET request and resolves with the response head; the body is left to read. */
export function sendOnce(req: HttpRequest): Promise<HttpResponse> {
  const { url, timeoutMs } = req;
  const secure = url.protocol === 'https:';
  const options: https.RequestOptions = {
    method: 'GET',
    headers: { 'User-Agent': 'flyces-minic', ...req.headers },
    timeout: timeoutMs,
    signal: req.signal,
  };
  if (secure && req.tls) {
    options.ca = req.tls.ca;
    options.cert = req.tls.cert;
    options.key = req.tls.key;
    options.rejectUnauthorized = !req.tls.insecureSkipVerify;
  }
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(pullError(`cannot reach ${url.host}: ${describe(err, url.host)}`));
    const request = (secure ? https : http).request(url, options, (res) => {
      res.setTimeout(timeoutMs, () => {
        res.destroy(new Error(`no data from ${url.host} for ${timeoutMs} ms`));
      });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    });
    request.on('timeout', () => {
      request.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`));
    });
    request.on('error', onError);
    request.end();
  });
}

/** The next request of a redirect: same options on the same origin, bare ones elsewhere. */
function redirected(req: HttpRequest, res: HttpResponse): HttpRequest {
  const location = res.headers.location;
  if (!location) throw pullError(`${req.url.host} redirected without a Location`);
  const next = new URL(location, req.url);
  if (next.protocol !== 'https:' && next.protocol !== 'http:') {
    throw pullError(`${req.url.host} redirected to an unsupported URL scheme`);
  }
  if (req.url.protocol === 'https:' && next.protocol === 'http:' && !isLoopbackHost(next.host)) {
    throw pullError(`${req.url.host} redirected from HTTPS to plain HTTP; refused`);
  }
  if (next.origin === req.url.origin) return { ...req, url: next };
  const headers = { ...req.headers };
  delete headers.Authorization;
  return { url: next, headers, timeoutMs: req.timeoutMs, signal: req.signal };
}

/** Sends a GET request, following redirects. */
export async function send(req: HttpRequest): Promise<HttpResponse> {
  let current = req;
  for (let hop = 0; ; hop++) {
    const res = await sendOnce(current);
    if (!REDIRECTS.has(res.status)) return res;
    res.body.resume();
    if (hop >= MAX_REDIRECTS) throw pullError(`${req.url.host}: too many redirects`);
    current = redirected(current, res);
  }
}

/** Reads a whole body, refusing one larger than `max` bytes before reading it all. */
export async function readBody(res: HttpResponse, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? NaN);
  if (declared > max) {
    res.body.destroy();
    throw pullError(`${what} is ${declared} bytes, more than the limit of ${max}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > max) throw pullError(`${what} is larger than the limit of ${max} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    res.body.destroy();
    if (err instanceof RuntimeError) throw err;
    throw pullError(`reading ${what} from ${res.url.host} failed: ${describe(err as Error)}`);
  }
  return Buffer.concat(chunks);
}
