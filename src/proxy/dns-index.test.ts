import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { RecordType } from 'dns-packet';

import { DnsIndex } from './dns-index.js';
import type { EndpointSlice, Service } from './types.js';

const services: Service[] = [
  {
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      clusterIP: '10.96.0.10',
      ports: [
        { name: 'http', port: 80 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    },
  },
  {
    metadata: { name: 'db', namespace: 'shop' },
    spec: { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] },
  },
  {
    metadata: { name: 'ext', namespace: 'shop' },
    spec: { type: 'ExternalName', externalName: 'db.example.org.' },
  },
];

const slices: EndpointSlice[] = [
  {
    metadata: { name: 'db-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'db' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.42.0.7'], hostname: 'db-0', conditions: { ready: true } },
      { addresses: ['10.42.0.8'], conditions: { ready: true } },
      { addresses: ['10.42.0.9'], conditions: { ready: false } },
    ],
    ports: [{ name: 'pg', port: 15432, protocol: 'TCP' }],
  },
];

interface Case {
  q: string;
  type?: RecordType;
  rcode: string;
  /** Expected answers as "TYPE data" strings, in order. */
  answers?: string[];
  additionals?: string[];
  soa?: boolean;
}

function show(r: { type: string; data?: unknown }): string {
  const d = r.data as { port?: number; target?: string } | string;
  if (typeof d === 'string') return `${r.type} ${d}`;
  return `${r.type} ${d.port} ${d.target}`;
}

const D = 'cluster.local';
const cases: Case[] = [
  { q: `web.shop.svc.${D}`, rcode: 'NOERROR', answers: ['A 10.96.0.10'] },
  { q: `WEB.Shop.svc.${D}.`, rcode: 'NOERROR', answers: ['A 10.96.0.10'] },
  { q: `web.shop.svc.${D}`, type: 'AAAA', rcode: 'NOERROR', answers: [], soa: true },
  { q: `db.shop.svc.${D}`, rcode: 'NOERROR', answers: ['A 10.42.0.7', 'A 10.42.0.8'] },
  { q: `db-0.db.shop.svc.${D}`, rcode: 'NOERROR', answers: ['A 10.42.0.7'] },
  { q: `10-42-0-8.db.shop.svc.${D}`, rcode: 'NOERROR', answers: ['A 10.42.0.8'] },
  { q: `10-42-0-9.db.shop.svc.${D}`, rcode: 'NXDOMAIN', soa: true },
  { q: `x.web.shop.svc.${D}`, rcode: 'NXDOMAIN', soa: true },
  {
    q: `_http._tcp.web.shop.svc.${D}`,
    type: 'SRV',
    rcode: 'NOERROR',
    answers: [`SRV 80 web.shop.svc.${D}`],
    additionals: ['A 10.96.0.10'],
  },
  {
    q: `_dns._udp.web.shop.svc.${D}`,
    type: 'SRV',
    rcode: 'NOERROR',
    answers: [`SRV 53 web.shop.svc.${D}`],
  },
  { q: `_dns._tcp.web.shop.svc.${D}`, type: 'SRV', rcode: 'NXDOMAIN', soa: true },
  {
    q: `_pg._tcp.db.shop.svc.${D}`,
    type: 'SRV',
    rcode: 'NOERROR',
    answers: [`SRV 15432 db-0.db.shop.svc.${D}`, `SRV 15432 10-42-0-8.db.shop.svc.${D}`],
    additionals: ['A 10.42.0.7', 'A 10.42.0.8'],
  },
  { q: `ext.shop.svc.${D}`, rcode: 'NOERROR', answers: ['CNAME db.example.org'] },
  { q: `10-42-0-5.shop.pod.${D}`, rcode: 'NOERROR', answers: ['A 10.42.0.5'] },
  { q: `10-42-0-500.shop.pod.${D}`, rcode: 'NXDOMAIN', soa: true },
  { q: `nope.shop.svc.${D}`, rcode: 'NXDOMAIN', soa: true },
  { q: `shop.svc.${D}`, rcode: 'NOERROR', answers: [], soa: true },
  { q: `empty.svc.${D}`, rcode: 'NXDOMAIN', soa: true },
  { q: `svc.${D}`, rcode: 'NOERROR', answers: [], soa: true },
  { q: D, type: 'SOA', rcode: 'NOERROR', answers: ['SOA'] },
  { q: `foo.${D}`, rcode: 'NXDOMAIN', soa: true },
  { q: 'example.org', rcode: 'REFUSED', answers: [] },
  { q: 'local', rcode: 'REFUSED', answers: [] },
  { q: `evilcluster.local`, rcode: 'REFUSED', answers: [] },
];

test('cluster zone lookups, table-driven', () => {
  const index = new DnsIndex();
  index.replaceAll(services, slices);
  for (const c of cases) {
    const a = index.resolve(c.q, c.type ?? 'A');
    const name = `${c.q} ${c.type ?? 'A'}`;
    assert.equal(a.rcode, c.rcode, name);
    if (c.answers) {
      const got = a.answers.map((r) => (r.type === 'SOA' ? 'SOA' : show(r)));
      assert.deepEqual(got, c.answers, name);
      for (const r of a.answers) if (r.type !== 'SOA') assert.equal(r.name, c.q, name);
    }
    if (c.additionals) assert.deepEqual(a.additionals.map(show), c.additionals, name);
    assert.equal(a.authorities.length === 1 && a.authorities[0].type === 'SOA', !!c.soa, name);
    assert.equal(a.authoritative, c.rcode !== 'REFUSED', name);
  }
});

test('updates are seen by the next lookup; the SOA serial moves', () => {
  const index = new DnsIndex('example.internal.');
  const serial = () => (index.soa() as { data: { serial: number } }).data.serial;
  const q = 'web.shop.svc.example.internal';
  assert.equal(index.resolve(q, 'A').rcode, 'NXDOMAIN');
  const s0 = serial();
  index.upsertService(services[0]);
  assert.deepEqual(index.resolve(q, 'A').answers.map(show), ['A 10.96.0.10']);
  assert.ok(serial() > s0);
  index.upsertService(services[1]);
  index.upsertEndpointSlice(slices[0]);
  assert.equal(index.resolve('db.shop.svc.example.internal', 'A').answers.length, 2);
  index.deleteEndpointSlice(slices[0].metadata);
  assert.equal(index.resolve('db.shop.svc.example.internal', 'A').answers.length, 0);
  index.deleteService(services[0].metadata);
  assert.equal(index.resolve(q, 'A').rcode, 'NXDOMAIN');
  assert.equal(index.resolve(`web.shop.svc.${D}`, 'A').rcode, 'REFUSED');
  assert.throws(() => new DnsIndex('bad domain'));
});
