import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import {
  certificateWindow,
  checkCertificateRequest,
  issueCert,
  newCertificateRequest,
  newClusterCa,
  type IssueRequest,
} from './pki.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

test('issued certificates name their subject, usage, addresses and lifetime', async () => {
  const ca = await newClusterCa();
  const caCert = new X509Certificate(ca.certPem);
  const csr = await checkCertificateRequest(
    (await newCertificateRequest('system:node:a', ['system:nodes'])).csrPem,
  );
  const rows: [string, IssueRequest, RegExp, string, string | undefined][] = [
    [
      'node client, key from a CSR',
      {
        commonName: 'system:node:a',
        organizations: ['system:nodes'],
        usage: 'client',
        lifetimeMs: 60_000,
        publicKey: csr!.publicKey,
      },
      /CN=system:node:a\nO=system:nodes/,
      CLIENT_AUTH,
      undefined,
    ],
    [
      'server with addresses',
      { commonName: 's', hosts: ['10.0.0.5', 'node-a'], usage: 'server', lifetimeMs: 3_600_000 },
      /CN=s/,
      SERVER_AUTH,
      'IP Address:10.0.0.5, DNS:node-a',
    ],
  ];
  for (const [name, req, subject, eku, san] of rows) {
    const issued = await issueCert(ca, req);
    const cert = new X509Certificate(issued.certPem);
    assert.match(cert.subject, subject, name);
    assert.ok(cert.verify(caCert.publicKey), `${name}: signed by the CA`);
    assert.deepEqual(cert.keyUsage, [eku], name);
    assert.equal(cert.subjectAltName, san, name);
    assert.equal(issued.keyPem === undefined, req.publicKey !== undefined, `${name}: key made`);
    const { notBefore, notAfter } = certificateWindow(issued.certPem);
    const lifetime = notAfter - notBefore;
    assert.ok(lifetime >= req.lifetimeMs && lifetime <= req.lifetimeMs * 1.1 + 2000, name);
  }
});
