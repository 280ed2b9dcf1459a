import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import * as dnsPacket from 'dns-packet';
import type { RecordType } from 'dns-packet';
import { pino } from 'pino';

import { DnsIndex } from '../src/proxy/dns-index.js';
import { DnsServer } from '../src/proxy/dns.js';
import { Proxier } from '../src/proxy/proxier.js';
import type { EndpointSlice, Service } from '../src/proxy/types.js';

/**
 * Service routing and cluster DNS against the real kernel. Needs root. Everything lives
 * in network namespaces of this test's own (flycesproxy-<pid>-node, -a, -b, -c): "node"
 * has a bridge with 10.42.230.1/24 and forwards (ip_forward is set inside it only); the
 * three "pods" hang off the bridge by veths. b and c run a small TCP server that answers
 * with its name and the address it saw the client as. The proxier programs the node
 * namespace through `ip netns exec`. The namespaces, and with them every nft table,
 * address and veth, are removed by name in `after`, the child processes by pid.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const distSrc = path.resolve(here, '..', 'src');
const BUSYBOX = '/bin/busybox';
const PREFIX = `flycesproxy-${process.pid}`;
const NODE_NS = `${PREFIX}-node`;
const PODS = { a: '10.42.230.2', b: '10.42.230.3', c: '10.42.230.4' };
const NODE_IP = '10.42.230.1';
const CIDR = '10.42.230.0/24';
const SERVER_PORT = 8080;
const log = pino({ level: 'silent' });

const podNs = (pod: keyof typeof PODS) => `${PREFIX}-${pod}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ip(...args: string[]): Promise<string> {
  return (await exec('ip', args)).stdout;
}

async function inNs(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return (await exec('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: 20_000 })).stdout;
}

/** Answers every connection with "<name> <client address>" and closes it. */
const SERVER = `
const net = require('node:net');
const name = process.argv[1];
net.createServer((s) => s.end(name + ' ' + s.remoteAddress + '\\n'))
  .listen(${SERVER_PORT}, '0.0.0.0', () => console.log('ready'));
`;

/** Opens n connections one after another; prints each answer or error code as JSON. */
const CLIENT = `
const net = require('node:net');
const [host, port, n] = process.argv.slice(1);
async function once() {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let data = '';
    const s = net.connect({ host, port: Number(port) });
    s.setTimeout(3000, () => s.destroy(Object.assign(new Error('t'), { code: 'TIMEOUT' })));
    s.on('data', (c) => (data += c));
    s.on('end', () => resolve({ out: data.trim(), ms: Date.now() - t0 }));
    s.on('error', (e) => resolve({ err: e.code, ms: Date.now() - t0 }));
  });
}
(async () => {
  const out = [];
  for (let i = 0; i < Number(n); i++) out.push(await once());
  console.log(JSON.stringify(out));
})();
`;

interface Reply {
  out?: string;
  err?: string;
  ms: number;
}

async function connect(ns: string, host: string, port: number, n = 1): Promise<Reply[]> {
  const stdout = await inNs(ns, process.execPath, '-e', CLIENT, host, String(port), String(n));
  return JSON.parse(stdout) as Reply[];
}

/** Server names of the replies, e.g. ['b', 'c', 'b']; fails on any error. */
function names(replies: Reply[]): string[] {
  for (const r of replies) assert.equal(r.err, undefined, `connection failed: ${r.err}`);
  return replies.map((r) => (r.out ?? '').split(' ')[0]);
}

function spawnReady(ns: string, args: string[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`${args[0]} in ${ns} exited ${code}: ${err}`)));
  });
}

const children: ChildProcess[] = [];

function svc(name: string, clusterIP: string, extra: Partial<Service['spec']> = {}): Service {
  return {
    metadata: { name, namespace: 'default' },
    spec: { clusterIP, ports: [{ name: 'http', port: 80, targetPort: SERVER_PORT }], ...extra },
  };
}

function slice(service: string, eps: [keyof typeof PODS, boolean][]): EndpointSlice {
  return {
    metadata: {
      name: `${service}-x`,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': service },
    },
    addressType: 'IPv4',
    endpoints: eps.map(([pod, ready]) => ({
      addresses: [PODS[pod]],
      conditions: { ready, serving: ready, terminating: false },
      nodeName: 'node',
    })),
    ports: [{ name: 'http', port: SERVER_PORT, protocol: 'TCP' }],
  };
}

async function setUpNamespaces(): Promise<void> {
  await ip('netns', 'add', NODE_NS);
  await ip('-n', NODE_NS, 'link', 'set', 'lo', 'up');
  await ip('-n', NODE_NS, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', NODE_NS, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'br0');
  await ip('-n', NODE_NS, 'link', 'set', 'br0', 'up');
  await inNs(NODE_NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  for (const [pod, addr] of Object.entries(PODS) as [keyof typeof PODS, string][]) {
    const ns = podNs(pod);
    await ip('netns', 'add', ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip(
      '-n',
      NODE_NS,
      'link',
      'add',
      `veth-${pod}`,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns,
    );
    await ip('-n', NODE_NS, 'link', 'set', `veth-${pod}`, 'master', 'br0', 'up');
    // As miniC's pod network does for flyCes pods (hairpin): with br_netfilter
    // loaded, a pod's connection to its own Service is DNATed at the bridge and must be
    // allowed back out of the port it came in on.
    await ip('-n', NODE_NS, 'link', 'set', `veth-${pod}`, 'type', 'bridge_slave', 'hairpin', 'on');
    await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', ns, 'route', 'add', 'default', 'via', NODE_IP);
  }
}

async function cleanUp(): Promise<void> {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const ns of [NODE_NS, podNs('a'), podNs('b'), podNs('c')]) {
    await exec('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

describe('service routing and cluster DNS in network namespaces', { timeout: 90_000 }, () => {
  const services: Service[] = [
    svc('web', '10.96.230.10'),
    svc('empty', '10.96.230.11'),
    svc('np', '10.96.230.12', {
      type: 'NodePort',
      ports: [{ name: 'http', port: 80, nodePort: 30080 }],
    }),
    svc('self', '10.96.230.13'),
    svc('sticky', '10.96.230.14', { sessionAffinity: 'ClientIP' }),
  ];
  const slices: EndpointSlice[] = [
    slice('web', [
      ['b', true],
      ['c', true],
    ]),
    slice('np', [['b', true]]),
    slice('self', [['b', true]]),
    slice('sticky', [
      ['b', true],
      ['c', true],
    ]),
  ];
  let proxier: Proxier | undefined;

  before(async () => {
    await cleanUp();
    await setUpNamespaces();
    await spawnReady(podNs('b'), [process.execPath, '-e', SERVER, 'b']);
    await spawnReady(podNs('c'), [process.execPath, '-e', SERVER, 'c']);
    proxier = new Proxier({
      podCidr: CIDR,
      nodeAddresses: [NODE_IP],
      netns: NODE_NS,
      source: { services: () => services, endpointSlices: () => slices },
      log,
    });
    proxier.start();
    await proxier.synced();
  });

  after(async () => {
    try {
      await proxier?.stop().catch(() => undefined);
    } finally {
      await cleanUp();
    }
  });

  it('a pod reaches a ClusterIP and both endpoints get connections', async () => {
    const got = names(await connect(podNs('a'), '10.96.230.10', 80, 30));
    assert.ok(got.includes('b') && got.includes('c'), `spread: ${got.join(',')}`);
    assert.ok(got.every((n) => n === 'b' || n === 'c'));
  });

  it('pod traffic to a Service is masqueraded to the node bridge address', async () => {
    const [r] = await connect(podNs('a'), '10.96.230.10', 80);
    assert.match(r.out ?? '', /^[bc] (::ffff:)?10\.42\.230\.1$/);
  });

  it('ClientIP session affinity keeps a client on one endpoint', async () => {
    const got = names(await connect(podNs('a'), '10.96.230.14', 80, 12));
    assert.equal(new Set(got).size, 1, got.join(','));
  });

  it('an endpoint that turns unready stops getting connections within 1 s', async () => {
    slices[0] = slice('web', [
      ['b', true],
      ['c', false],
    ]);
    proxier!.changed();
    await sleep(1000);
    const got = names(await connect(podNs('a'), '10.96.230.10', 80, 20));
    assert.deepEqual(new Set(got), new Set(['b']));
    const last = proxier!.stats().last;
    assert.ok(
      last?.ok && last.applied && (last.latencyMs ?? Infinity) < 1000,
      JSON.stringify(last),
    );
  });

  it('a Service without endpoints refuses connections at once', async () => {
    const [r] = await connect(podNs('a'), '10.96.230.11', 80);
    assert.equal(r.err, 'ECONNREFUSED');
    assert.ok(r.ms < 500, `refused after ${r.ms} ms`);
  });

  it('a NodePort answers on the node bridge address, from a pod and from the node', async () => {
    assert.deepEqual(names(await connect(podNs('a'), NODE_IP, 30080, 3)), ['b', 'b', 'b']);
    assert.deepEqual(names(await connect(NODE_NS, NODE_IP, 30080)), ['b']);
    const [closed] = await connect(podNs('a'), NODE_IP, 30081);
    assert.equal(closed.err, 'ECONNREFUSED', 'other ports are not forwarded');
  });

  it('hairpin: a pod reaches its own Service, masqueraded to the node', async () => {
    const [r] = await connect(podNs('b'), '10.96.230.13', 80);
    assert.equal(r.err, undefined);
    assert.match(r.out ?? '', /^b (::ffff:)?10\.42\.230\.1$/);
  });

  it('the cluster DNS answers a pod over the bridge address (busybox nslookup)', async () => {
    const script = `
      const { DnsIndex } = await import(${JSON.stringify(`${distSrc}/proxy/dns-index.js`)});
      const { DnsServer } = await import(${JSON.stringify(`${distSrc}/proxy/dns.js`)});
      const index = new DnsIndex();
      index.replaceAll(JSON.parse(process.argv[1]), JSON.parse(process.argv[2]));
      const quiet = { info() {}, error() {}, warn() {}, debug() {} };
      await new DnsServer({ resolver: index, host: ${JSON.stringify(NODE_IP)}, port: 53, log: quiet })
        .start();
      console.log('ready');
    `;
    await spawnReady(NODE_NS, [
      process.execPath,
      '--input-type=module',
      '-e',
      script,
      JSON.stringify(services),
      JSON.stringify(slices),
    ]);
    const ok = await inNs(
      podNs('a'),
      BUSYBOX,
      'nslookup',
      'web.default.svc.cluster.local',
      NODE_IP,
    );
    assert.match(ok, /Address:?\s+10\.96\.230\.10/);
    const srv = await inNs(
      podNs('a'),
      BUSYBOX,
      'nslookup',
      '-type=srv',
      '_http._tcp.web.default.svc.cluster.local',
      NODE_IP,
    );
    assert.match(srv, /web\.default\.svc\.cluster\.local/);
    assert.match(srv, /\b80\b/);
    const missing = await inNs(
      podNs('a'),
      BUSYBOX,
      'nslookup',
      'nope.default.svc.cluster.local',
      NODE_IP,
    )
      .then((out) => out)
      .catch((err: { stdout?: string; stderr?: string }) => `${err.stdout}${err.stderr}`);
    assert.match(missing, /NXDOMAIN/);
  });

  it('stop removes the table from the node namespace', async () => {
    assert.match(await inNs(NODE_NS, 'nft', 'list', 'tables'), /table ip flyces/);
    await proxier!.stop();
    proxier = undefined;
    assert.doesNotMatch(await inNs(NODE_NS, 'nft', 'list', 'tables'), /flyces/);
  });
});

function dataOf(r: dnsPacket.Answer): unknown {
  return (r as { data?: unknown }).data;
}

/** Sends one question over UDP and returns the decoded answer. */
async function udpQuery(port: number, name: string, type: RecordType) {
  const sock = dgram.createSocket('udp4');
  try {
    const id = Math.floor(Math.random() * 65535);
    const answer = new Promise<Buffer>((resolve, reject) => {
      sock.once('message', resolve);
      setTimeout(() => reject(new Error('no DNS answer in 2 s')), 2000).unref();
    });
    sock.send(
      dnsPacket.encode({ type: 'query', id, questions: [{ name, type }] }),
      port,
      '127.0.0.1',
    );
    const res = dnsPacket.decode(await answer) as dnsPacket.DecodedPacket & { rcode: string };
    assert.equal(res.id, id);
    return res;
  } finally {
    sock.close();
  }
}

/** Sends one question over TCP (length-prefixed) and returns the decoded answer. */
async function tcpQuery(port: number, name: string, type: RecordType) {
  const sock = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  sock.write(dnsPacket.streamEncode({ type: 'query', id: 7, questions: [{ name, type }] }));
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      const buf = Buffer.concat(chunks);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) resolve();
    });
    sock.on('error', reject);
  });
  sock.destroy();
  return dnsPacket.streamDecode(Buffer.concat(chunks)) as dnsPacket.DecodedPacket & {
    rcode: string;
  };
}

describe('cluster DNS over real UDP and TCP on 127.0.0.1', () => {
  const index = new DnsIndex();
  const server = new DnsServer({ resolver: index, host: '127.0.0.1', port: 0, log });
  let port = 0;

  before(async () => {
    index.replaceAll(
      [
        svc('web', '10.96.0.10'),
        { metadata: { name: 'db', namespace: 'default' }, spec: { clusterIP: 'None' } },
      ],
      [
        slice('db', [
          ['b', true],
          ['c', true],
        ]),
      ],
    );
    port = (await server.start()).port;
  });

  after(async () => server.stop());

  it('answers A, SRV, NXDOMAIN and REFUSED', async () => {
    const a = await udpQuery(port, 'web.default.svc.cluster.local', 'A');
    assert.equal(a.rcode, 'NOERROR');
    assert.deepEqual(
      a.answers?.map((r) => dataOf(r)),
      ['10.96.0.10'],
    );
    const headless = await udpQuery(port, 'db.default.svc.cluster.local', 'A');
    assert.deepEqual(
      headless.answers?.map((r) => dataOf(r)),
      [PODS.b, PODS.c],
    );
    const srv = await udpQuery(port, '_http._tcp.web.default.svc.cluster.local', 'SRV');
    assert.deepEqual(
      srv.answers?.map((r) => dataOf(r)),
      [{ priority: 0, weight: 100, port: 80, target: 'web.default.svc.cluster.local' }],
    );
    const nx = await udpQuery(port, 'nope.default.svc.cluster.local', 'A');
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.authorities?.[0]?.type, 'SOA');
    const out = await udpQuery(port, 'example.org', 'A');
    assert.equal(out.rcode, 'REFUSED');
    assert.equal(out.answers?.length, 0);
  });

  it('answers over TCP and follows index updates', async () => {
    const before = await tcpQuery(port, 'web.default.svc.cluster.local', 'A');
    assert.deepEqual(
      before.answers?.map((r) => dataOf(r)),
      ['10.96.0.10'],
    );
    index.deleteService({ name: 'web', namespace: 'default' });
    const gone = await tcpQuery(port, 'web.default.svc.cluster.local', 'A');
    assert.equal((gone as { rcode: string }).rcode, 'NXDOMAIN');
  });
});
