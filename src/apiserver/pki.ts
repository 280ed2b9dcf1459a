import { webcrypto, randomBytes, X509Certificate } from 'node:crypto';
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
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=flyces-ca',
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
  writeAtomic(join(dir, 'ca.key'), await exportKey(keys.privateKey), 0o600);
  writeAtomic(join(dir, 'ca.crt'), `${cert.toString('pem')}\n`, 0o644);
}

async function createServing(dir: string, hosts: string[]): Promise<void> {
  const caCert = new x509.X509Certificate(readFileSync(join(dir, 'ca.crt'), 'utf8'));
  const caKey = await importKey(readFileSync(join(dir, 'ca.key'), 'utf8'));
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const names = hosts.map(
    (h) => ({ type: /^[\d.]+$|:/.test(h) ? 'ip' : 'dns', value: h }) as x509.JsonGeneralName,
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=flyces-apiserver',
    issuer: caCert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 365 * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  writeAtomic(join(dir, 'apiserver.key'), await exportKey(keys.privateKey), 0o600);
  writeAtomic(
    join(dir, 'apiserver.crt'),
    `${cert.toString('pem')}\n${caCert.toString('pem')}\n`,
    0o644,
  );
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
