import { createHash, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

/**
 * The cluster's certificate authority and the API server's serving certificate. kubectl and
 * client-go send bearer tokens only over TLS, so the API is always served over HTTPS from a
 * CA the cluster makes for itself on first start (ECDSA P-256, like kubeadm's defaults).
 */

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface TlsFiles {
  caCert: string;
  cert: string;
  key: string;
}

export interface ServingCert {
  /** PEM of the CA certificate, for kubeconfigs. */
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return webcrypto.subtle.importKey('pkcs8', Buffer.from(b64, 'base64'), ALG, true, ['sign']);
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString('hex');
}

function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

async function createCa(dir: string): Promise<void> {
  const ca = await newClusterCa();
  writeAtomic(join(dir, 'ca.key'), ca.keyPem, 0o600);
  writeAtomic(join(dir, 'ca.crt'), ca.certPem, 0o644);
}

async function createServing(dir: string, hosts: string[]): Promise<void> {
  const ca = {
    certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    keyPem: readFileSync(join(dir, 'ca.key'), 'utf8'),
  };
  const serving = await issueServingCert(ca, hosts);
  writeAtomic(join(dir, 'apiserver.key'), serving.keyPem, 0o600);
  writeAtomic(join(dir, 'apiserver.crt'), serving.certPem, 0o644);
}

/** A certificate authority: its certificate and private key, both PEM. */
export interface CaPair {
  certPem: string;
  keyPem: string;
}

/** A new self-signed CA named `commonName` (default the cluster CA's), valid ten years. */
export async function newClusterCa(commonName = 'flyces-ca'): Promise<CaPair> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: [{ CN: [commonName] }],
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 3650 * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await exportKey(keys.privateKey) };
}

/** What a certificate is for: TLS client, TLS server, or both. */
export type CertUsage = 'client' | 'server';

export interface IssueRequest {
  /** Subject common name, e.g. `system:node:a`. */
  commonName: string;
  /** Subject organizations (groups), e.g. `system:nodes`. */
  organizations?: string[];
  /** DNS names or IP addresses for the subjectAltName (server certificates). */
  hosts?: string[];
  usage: CertUsage;
  /** Lifetime in ms, from now. */
  lifetimeMs: number;
  /** The key to certify (from a CSR); without it a key pair is made and returned. */
  publicKey?: x509.PublicKey;
}

/** A certificate issued by a CA (PEM, followed by the CA's), with its key when made here. */
export interface IssuedCert {
  certPem: string;
  keyPem?: string;
  notAfter: Date;
}

/** Signs a certificate with the CA; makes the key pair too unless `req.publicKey` is given. */
export async function issueCert(ca: CaPair, req: IssueRequest): Promise<IssuedCert> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importKey(ca.keyPem);
  const pair = req.publicKey
    ? undefined
    : await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const notAfter = new Date(now + req.lifetimeMs);
  const subject: x509.JsonName = [{ CN: [req.commonName] }];
  for (const o of req.organizations ?? []) subject.push({ O: [o] });
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([
      req.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ]),
  ];
  if (req.hosts?.length) extensions.push(new x509.SubjectAlternativeNameExtension(sans(req.hosts)));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: caCert.subject,
    // Back-dated a little for clocks behind the signer's, by at most a tenth of the lifetime.
    notBefore: new Date(now - Math.min(60_000, req.lifetimeMs / 10)),
    notAfter,
    signingAlgorithm: ALG,
    publicKey: req.publicKey ?? pair!.publicKey,
    signingKey: caKey,
    extensions,
  });
  return {
    certPem: `${cert.toString('pem')}\n${caCert.toString('pem')}\n`,
    keyPem: pair && (await exportKey(pair.privateKey)),
    notAfter,
  };
}

function sans(hosts: string[]): x509.JsonGeneralNames {
  return hosts.map(
    (h) => ({ type: /^[\d.]+$|:/.test(h) ? 'ip' : 'dns', value: h }) as x509.JsonGeneralName,
  );
}

/** The API server's serving certificate (CN=flyces-apiserver) for `hosts`, valid a year. */
export function issueServingCert(ca: CaPair, hosts: string[]): Promise<Required<IssuedCert>> {
  return issueCert(ca, {
    commonName: 'flyces-apiserver',
    hosts,
    usage: 'server',
    lifetimeMs: 365 * DAY_MS,
  }) as Promise<Required<IssuedCert>>;
}

/** A new key pair and a PKCS#10 request for `commonName`/`organizations`, both PEM. */
export async function newCertificateRequest(
  commonName: string,
  organizations: string[] = [],
): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const name: x509.JsonName = [{ CN: [commonName] }];
  for (const o of organizations) name.push({ O: [o] });
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys,
    signingAlgorithm: ALG,
  });
  return { csrPem: csr.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/** A parsed certificate request whose signature proves the requester holds the key. */
export interface CheckedRequest {
  commonName: string;
  organizations: string[];
  publicKey: x509.PublicKey;
}

/** Parses a PEM CSR and checks its self-signature; undefined when it is not valid. */
export async function checkCertificateRequest(pem: string): Promise<CheckedRequest | undefined> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
    if (!(await csr.verify())) return undefined;
  } catch {
    return undefined;
  }
  return {
    commonName: csr.subjectName.getField('CN')[0] ?? '',
    organizations: csr.subjectName.getField('O'),
    publicKey: csr.publicKey,
  };
}

/** The SHA-256 of the first certificate of a PEM (its DER bytes), lowercase hex. */
export function certificateHash(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/** The validity window of the first certificate of a PEM. */
export function certificateWindow(pem: string): { notBefore: number; notAfter: number } {
  const cert = new X509Certificate(pem);
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** Whether the serving certificate exists, names every host, and has 30+ days left. */
function servingCertUsable(path: string, hosts: string[]): boolean {
  if (!existsSync(path)) return false;
  const cert = new X509Certificate(readFileSync(path));
  if (Date.parse(cert.validTo) - Date.now() < 30 * DAY_MS) return false;
  const san = cert.subjectAltName ?? '';
  return hosts.every((h) => san.includes(h));
}

/**
 * Makes sure `dir` holds the CA and a serving certificate for `hosts`, creating or renewing
 * what is missing, about to expire, or lacks a host. Safe to call on every start.
 */
export async function ensureServingCert(dir: string, hosts: string[]): Promise<ServingCert> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(join(dir, 'ca.crt')) || !existsSync(join(dir, 'ca.key'))) await createCa(dir);
  if (!servingCertUsable(join(dir, 'apiserver.crt'), hosts)) await createServing(dir, hosts);
  return {
    caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    certPem: readFileSync(join(dir, 'apiserver.crt'), 'utf8'),
    keyPem: readFileSync(join(dir, 'apiserver.key'), 'utf8'),
  };
}
