import dgram from 'node:dgram';
import net from 'node:net';

import * as dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, Question } from 'dns-packet';

import type { Logger } from '../log.js';
import { DEFAULT_CLUSTER_DOMAIN, type DnsResolver } from './dns-index.js';

/**
 * The cluster DNS server: answers the cluster zone from a DnsResolver over UDP and TCP on
 * one address and port. It is authoritative for the zone and never recursive: names
 * outside the zone are REFUSED and nothing is ever sent anywhere but back to the asker.
 *
 * One question per message (as every resolver sends); other counts are FORMERR, opcodes
 * other than QUERY are NOTIMP. A UDP answer larger than the asker's buffer (512 bytes, or
 * the EDNS size it advertised, at most 4096) is sent empty with the TC bit, and the
 * resolver retries over TCP. The answer does not echo EDNS options.
 */

export interface DnsServerOptions {
  resolver: DnsResolver;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port for both UDP and TCP; default 53, 0 picks a free one. */
  port?: number;
  log: Logger;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
const TCP_IDLE_MS = 10_000;
const MAX_UDP = 4096;

/** Builds the wire answer to one wire query; undefined when it cannot even be answered. */
export function answerQuery(
  resolver: DnsResolver,
  query: Buffer,
  maxSize = 65535,
): Buffer | undefined {
  let req: DecodedPacket & { opcode?: string };
  try {
    req = dnsPacket.decode(query);
  } catch {
    if (query.length < 12 || (query[2] & 0x80) !== 0) return undefined;
    return failure(query.readUInt16BE(0), [], RCODE.FORMERR, (query[2] & 0x01) << 8);
  }
  if (req.type !== 'query') return undefined;
  const rd = req.flag_rd ? dnsPacket.RECURSION_DESIRED : 0;
  const questions = req.questions ?? [];
  if (req.opcode !== 'QUERY') return failure(req.id ?? 0, questions, RCODE.NOTIMP, rd);
  if (questions.length !== 1) return failure(req.id ?? 0, questions, RCODE.FORMERR, rd);

  const q = questions[0];
  const a = resolver.resolve(q.name, q.type);
  const flags = rd | (a.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | RCODE[a.rcode];
  const res: Packet = {
    type: 'response',
    id: req.id,
    flags,
    questions: [q],
    answers: a.answers,
    authorities: a.authorities,
    additionals: a.additionals,
  };
  const wire = dnsPacket.encode(res);
  if (wire.length <= maxSize) return wire;
  return dnsPacket.encode({
    ...res,
    flags: flags | dnsPacket.TRUNCATED_RESPONSE,
    answers: [],
    authorities: [],
    additionals: [],
  });
}

function failure(id: number, questions: Question[], rcode: number, rd: number): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags: rcode | rd, questions });
}

/** The UDP size the asker accepts: 512, or its EDNS buffer size up to 4096. */
export function udpLimit(query: Buffer): number {
  try {
    const opt = dnsPacket.decode(query).additionals?.find((r) => r.type === 'OPT');
    const size = opt && 'udpPayloadSize' in opt ? Number(opt.udpPayloadSize) : 512;
    return Math.min(Math.max(size, 512), MAX_UDP);
  } catch {
    return 512;
  }
}

/** Serves a DnsResolver on one address over UDP and TCP; see the file comment. */
export class DnsServer {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly options: DnsServerOptions) {}

  /** Starts listening; resolves with the bound address and port once both sockets are up. */
  async start(): Promise<{ host: string; port: number }> {
    const host = this.options.host ?? '127.0.0.1';
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    this.udp = udp;
    udp.on('message', (msg, from) => this.onDatagram(msg, from));
    udp.on('error', (err) => this.options.log.error({ err }, 'dns udp socket error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.options.port ?? 53, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;

    const tcp = net.createServer((sock) => this.onConnection(sock));
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.options.log.info({ host, port }, 'cluster dns listening');
    return { host, port };
  }

  /** Closes both sockets and every TCP connection. */
  async stop(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  private onDatagram(msg: Buffer, from: dgram.RemoteInfo): void {
    const out = this.safeAnswer(msg, udpLimit(msg));
    if (out) this.udp?.send(out, from.port, from.address);
  }

  /** TCP: each message is preceded by its length in two bytes (RFC 1035 4.2.2). */
  private onConnection(sock: net.Socket): void {
    this.conns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const out = this.safeAnswer(msg, 65535);
        if (!out) return void sock.destroy();
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        sock.write(Buffer.concat([len, out]));
      }
    });
  }

  private safeAnswer(msg: Buffer, limit: number): Buffer | undefined {
    try {
      return answerQuery(this.options.resolver, msg, limit);
    } catch (err) {
      this.options.log.error({ err }, 'dns answer failed');
      if (msg.length < 12) return undefined;
      return failure(msg.readUInt16BE(0), [], RCODE.SERVFAIL, 0);
    }
  }
}

export interface ResolvConfOptions {
  /** Addresses of the cluster DNS, in order. */
  nameservers: string[];
  /** The pod's namespace; its Services resolve by their bare names. */
  namespace: string;
  clusterDomain?: string;
  /** Names with fewer dots are tried with the search list first; default 5. */
  ndots?: number;
}

/** The resolv.conf a pod gets with dnsPolicy ClusterFirst. */
export function resolvConf(o: ResolvConfOptions): string {
  const d = (o.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN).replace(/\.$/, '');
  return [
    ...o.nameservers.map((ip) => `nameserver ${ip}`),
    `search ${o.namespace}.svc.${d} svc.${d} ${d}`,
    `options ndots:${o.ndots ?? 5}`,
    '',
  ].join('\n');
}
