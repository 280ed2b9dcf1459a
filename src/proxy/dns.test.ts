import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as dnsPacket from 'dns-packet';
import type { RecordType } from 'dns-packet';

import { DnsIndex } from './dns-index.js';
import { answerQuery, resolvConf, udpLimit } from './dns.js';

function query(name: string, type: RecordType, extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type }],
    ...extra,
  });
}

function decode(b: Buffer | undefined) {
  assert.ok(b);
  return dnsPacket.decode(b) as dnsPacket.DecodedPacket & { rcode: string };
}

function headless(n: number): DnsIndex {
  const index = new DnsIndex();
  const endpoints = Array.from({ length: n }, (_, i) => ({ addresses: [`10.42.1.${i + 1}`] }));
  index.replaceAll(
    [{ metadata: { name: 'many', namespace: 'ns' }, spec: { clusterIP: 'None' } }],
    [
      {
        metadata: { name: 'm', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'many' } },
        addressType: 'IPv4',
        endpoints,
      },
    ],
  );
  return index;
}

test('wire answers carry id, question, rcode and flags', () => {
  const index = headless(2);
  const table: { q: Buffer; rcode: string; aa: boolean; answers: number }[] = [
    { q: query('many.ns.svc.cluster.local', 'A'), rcode: 'NOERROR', aa: true, answers: 2 },
    { q: query('x.ns.svc.cluster.local', 'A'), rcode: 'NXDOMAIN', aa: true, answers: 0 },
    { q: query('example.org', 'A'), rcode: 'REFUSED', aa: false, answers: 0 },
    {
      q: dnsPacket.encode({
        type: 'query',
        id: 4242,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [],
      }),
      rcode: 'FORMERR',
      aa: false,
      answers: 0,
    },
    {
      q: query('many.ns.svc.cluster.local', 'A', {
        flags: dnsPacket.RECURSION_DESIRED | (2 << 11),
      }),
      rcode: 'NOTIMP',
      aa: false,
      answers: 0,
    },
  ];
  for (const c of table) {
    const r = decode(answerQuery(index, c.q));
    assert.equal(r.id, 4242);
    assert.equal(r.type, 'response');
    assert.equal(r.rcode, c.rcode);
    assert.equal(r.flag_aa, c.aa);
    assert.equal(r.flag_rd, true);
    assert.equal(r.flag_ra, false, 'never recursive');
    assert.equal(r.answers?.length, c.answers);
  }
  const garbage = Buffer.from('0102030405060708090a0b0c0d0e', 'hex');
  assert.equal(decode(answerQuery(index, garbage)).rcode, 'FORMERR');
  assert.equal(answerQuery(index, Buffer.from([1, 2, 3])), undefined);
  const response = dnsPacket.encode({ type: 'response', id: 1, questions: [] });
  assert.equal(answerQuery(index, response), undefined, 'responses are not answered');
});

test('answers too big for the UDP buffer come back truncated', () => {
  const index = headless(60);
  const q = query('many.ns.svc.cluster.local', 'A');
  assert.equal(udpLimit(q), 512);
  const small = decode(answerQuery(index, q, udpLimit(q)));
  assert.equal(small.flag_tc, true);
  assert.equal(small.answers?.length, 0);
  const edns = query('many.ns.svc.cluster.local', 'A', {
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as dnsPacket.Answer],
  });
  assert.equal(udpLimit(edns), 4096);
  const big = decode(answerQuery(index, edns, udpLimit(edns)));
  assert.equal(big.flag_tc, false);
  assert.equal(big.answers?.length, 60);
});

test('resolv.conf for a pod', () => {
  assert.equal(
    resolvConf({ nameservers: ['10.96.0.10'], namespace: 'shop' }),
    'nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\n' +
      'options ndots:5\n',
  );
  assert.equal(
    resolvConf({ nameservers: ['a', 'b'], namespace: 'x', clusterDomain: 'k.test.', ndots: 2 }),
    'nameserver a\nnameserver b\nsearch x.svc.k.test svc.k.test k.test\noptions ndots:2\n',
  );
});
