import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  ftruncateSync,
  promises as fs,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

import type { Logger } from '../log.js';
import { ExecError, run } from './exec.js';
import { exists, randomHex } from './fsutil.js';

/**
 * Pod networking: a named network namespace per sandbox (the `ip netns` convention,
 * /var/run/netns/NAME) joined to the node's Linux bridge by a veth pair, its address
 * leased from the node's pod subnet.
 *
 * One `ip` run does a sandbox's whole attachment: it makes the namespace, the veth pair
 * (eth0 inside, a name derived from the attachment's id on the bridge, with hairpin on so
 * a pod reaches itself through a service address), and then, inside the namespace, brings
 * up `lo` and eth0 with its address and a default route to the bridge's gateway address.
 * This used to take the CNI `bridge`, `host-local` and `loopback` plugins plus `ip netns
 * add`: four programs, three of them Go binaries, about 13 ms of CPU per pod, against
 * about 4 for this, which mattered most in bursts of pods where CPU is what runs out.
 *
 * The leases keep host-local's files and place (one file per address, named by it,
 * holding the attachment id, then `\r\n` and the interface), so a node that ran the
 * plugins keeps its pods' addresses. Nothing is routed to the outside world: no NAT
 * rules, no IP forwarding; miniC puts the gateway address on the bridge itself so the
 * host can reach the pods and pods have a default route to the host.
 */

export interface PodNetworkOptions {
  /** Pod subnet of this node (IPv4 CIDR), e.g. 10.42.0.0/24. */
  podCidr: string;
  /** Name of the node's pod bridge, e.g. flyces0 (at most 15 characters). */
  bridge: string;
  /** Directory of the address leases, a subdirectory per network name. */
  ipamDir: string;
  /** Directory for `ip`'s short-lived command files; best on a tmpfs. */
  scratchDir: string;
  /** Name of the pod network, the leases' subdirectory; default flyces. */
  networkName?: string;
  log: Logger;
}

/** What an attachment produced for one sandbox. */
export interface Attachment {
  ip: string;
  prefixLength: number;
  gateway: string;
}

/**
 * What a sandbox's record keeps of the network it was attached to, so that detaching it
 * undoes exactly what attaching did, whatever the node's settings are by then.
 */
export type NetworkConfig = {
  type: 'flyces-bridge';
  name: string;
  bridge: string;
  subnet: string;
  leaseDir: string;
};

const NETNS_DIR = '/var/run/netns';
/** host-local's file of the last address it gave, which it starts the next search after. */
const LAST_RESERVED = 'last_reserved_ip.0';
/** Interface and namespace names that are safe as words of an `ip` batch line. */
const NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Where the kernel shows a network device of this namespace (its flags, its master). */
function sysNet(device: string): string {
  return path.join('/sys/class/net', device);
}

/** Path of a named network namespace. */
export function netnsPath(name: string): string {
  return path.join(NETNS_DIR, name);
}

/** statfs's type of the namespace file system. */
const NSFS_MAGIC = 0x6e736673;

/**
 * Whether the named network namespace exists: a namespace is mounted on its file. A file
 * with nothing on it is what a reboot leaves where /var/run is on disk, not a namespace.
 */
export function netnsExists(name: string): boolean {
  try {
    return statfsSync(netnsPath(name)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/** The first host address of an IPv4 CIDR and its prefix length. */
export function gatewayOf(cidr: string): { gateway: string; prefixLength: number } {
  const { base, prefixLength } = parseCidr(cidr);
  return { gateway: ipOf(base + 1), prefixLength };
}

function parseCidr(cidr: string): { base: number; size: number; prefixLength: number } {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!match) throw new Error(`pod CIDR "${cidr}" is not an IPv4 CIDR`);
  const octets = match.slice(1, 5).map(Number);
  const prefixLength = Number(match[5]);
  if (octets.some((o) => o > 255) || prefixLength < 8 || prefixLength > 30) {
    throw new Error(`pod CIDR "${cidr}" is out of range`);
  }
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefixLength);
  return { base: address - (address % size), size, prefixLength };
}

function ipOf(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function numberOf(ip: string): number | undefined {
  if (isIP(ip) !== 4) return undefined;
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

/**
 * The host end of an attachment's veth pair: named after the attachment id, so that
 * detaching finds it without asking the namespace (which may be gone).
 */
export function vethName(attachmentId: string): string {
  return 'veth' + createHash('sha256').update(attachmentId).digest('hex').slice(0, 11);
}

/** The config the CNI bridge plugin was given, kept by sandboxes made before this file. */
interface CniBridgeConfig {
  cniVersion: string;
  name: string;
  ipam: { dataDir: string };
}

function isCniBridgeConfig(config: object): config is CniBridgeConfig {
  const c = config as Partial<CniBridgeConfig>;
  return (
    typeof c.cniVersion === 'string' &&
    typeof c.name === 'string' &&
    typeof c.ipam?.dataDir === 'string'
  );
}

function isNetworkConfig(config: object): config is NetworkConfig {
  const c = config as Partial<NetworkConfig>;
  return (
    c.type === 'flyces-bridge' &&
    typeof c.name === 'string' &&
    NAME.test(c.name) &&
    typeof c.bridge === 'string' &&
    NAME.test(c.bridge) &&
    typeof c.subnet === 'string' &&
    typeof c.leaseDir === 'string'
  );
}

/** Creates and removes sandbox network namespaces and attaches them to the pod bridge. */
export class PodNetwork {
  /** Per bridge name, this process's making of it (see bridgeOnce). */
  private readonly bridgeReady = new Map<string, Promise<void>>();
  /** Per lease directory, the address the next search starts at. */
  private readonly nextAddress = new Map<string, number>();
  private readonly madeDirs = new Set<string>();

  constructor(private readonly options: PodNetworkOptions) {
    if (!NAME.test(options.bridge)) {
      throw new Error(`bridge name "${options.bridge}" must be 1-15 letters, digits, _ . or -`);
    }
    if (!NAME.test(this.networkName())) {
      throw new Error(
        `network name "${this.networkName()}" must be 1-15 letters, digits, _ . or -`,
      );
    }
    if (/["\s#\\]/.test(options.scratchDir)) {
      throw new Error(
        `scratch directory "${options.scratchDir}" must not hold blanks, quotes, # or \\`,
      );
    }
    parseCidr(options.podCidr);
  }

  /** The network as a sandbox's record keeps it (see NetworkConfig). */
  bridgeConfig(): NetworkConfig {
    return {
      type: 'flyces-bridge',
      name: this.networkName(),
      bridge: this.options.bridge,
      subnet: this.options.podCidr,
      leaseDir: this.options.ipamDir,
    };
  }

  private networkName(): string {
    return this.options.networkName ?? 'flyces';
  }

  /** Deletes the namespace `name`; a missing one is not an error. */
  async deleteNetns(name: string): Promise<void> {
    if (!(await exists(netnsPath(name)))) return;
    await run('ip', ['netns', 'delete', name]);
  }

  /**
   * Attaches the namespace `netns` (made here unless it exists) to the network of
   * `config` under the attachment id `id`, and returns its address. What a failure leaves
   * (namespace, veth, lease) is what `detach` and `deleteNetns` remove.
   */
  async attach(id: string, netns: string, config: object): Promise<Attachment> {
    if (!isNetworkConfig(config)) throw new Error('the sandbox names no pod network to attach');
    if (!NETNS_NAME.test(netns)) throw new Error(`network namespace name "${netns}" is invalid`);
    const made = this.bridgeOnce(config);
    await made;
    try {
      return await this.attachOnce(id, netns, config);
    } catch (err) {
      // A bridge deleted since it was made (by hand, or a `flyces down` of another run) is
      // made again, once, by the first attachment that finds it gone. Attachments that
      // failed beside that one find it back by the time they look, and try again too.
      if (this.bridgeReady.get(config.bridge) === made) {
        if (existsSync(sysNet(config.bridge))) throw err;
        this.bridgeReady.delete(config.bridge);
      }
      await this.bridgeOnce(config);
      return await this.attachOnce(id, netns, config);
    }
  }

  private async attachOnce(id: string, netns: string, config: NetworkConfig): Promise<Attachment> {
    const { gateway, prefixLength } = gatewayOf(config.subnet);
    const existed = netnsExists(netns);
    const veth = vethName(id);
    // A second try (after a crash or a failure midway): what the first left goes first. So
    // does a veth pair of an earlier attachment under this id whose namespace was deleted
    // while a process still held it (the pair lasts until that process is gone), and the
    // file of a namespace that a reboot ended.
    if (existed) await this.detach(id, netns, config);
    else {
      if (existsSync(netnsPath(netns))) rmSync(netnsPath(netns), { force: true });
      if (existsSync(sysNet(veth))) await ipUnlessGone(['link', 'del', veth]);
    }
    const ip = this.lease(config, id);
    this.makeDir(this.options.scratchDir);
    const inside = path.join(this.options.scratchDir, `${netns}.${randomHex(4)}.ip`);
    writeFileSync(
      inside,
      [
        'link set dev lo up',
        `addr add ${ip}/${prefixLength} dev eth0`,
        'link set dev eth0 up',
        `route add default via ${gateway}`,
      ].join('\n') + '\n',
    );
    const outside = [
      ...(existed ? [] : [`netns add ${netns}`]),
      `link add ${veth} type veth peer name eth0 netns ${netns}`,
      `link set dev ${veth} master ${config.bridge} up`,
      `link set dev ${veth} type bridge_slave hairpin on`,
      `netns exec ${netns} ip -b "${inside}"`,
    ];
    try {
      await run('ip', ['-b', '-'], { input: outside.join('\n') + '\n' });
    } catch (err) {
      throw new Error(`attaching ${netns} to bridge ${config.bridge} failed: ${detail(err)}`);
    } finally {
      rmSync(inside, { force: true });
    }
    this.options.log.debug({ netns, ip, veth }, 'pod network attached');
    return { ip, prefixLength, gateway };
  }

  /**
   * Removes the attachment `id` of `netns`: its veth pair and its address lease. Tolerant
   * of a namespace, veth or lease that is already gone. Sandboxes attached by the CNI
   * plugins (before this file) lose eth0 inside their namespace instead.
   */
  async detach(id: string, netns: string, config: object, ip?: string): Promise<void> {
    if (isCniBridgeConfig(config)) {
      if (netnsExists(netns)) await ipUnlessGone(['-n', netns, 'link', 'del', 'eth0']);
      this.release(path.join(config.ipam.dataDir, config.name), id, ip);
      return;
    }
    if (!isNetworkConfig(config)) throw new Error('the sandbox names no pod network to detach');
    await ipUnlessGone(['link', 'del', vethName(id)]);
    this.release(path.join(config.leaseDir, config.name), id, ip);
  }

  /**
   * Leases the next free address of the network's subnet to `id`, in host-local's files:
   * an address is taken by creating its file, which fails if another holds it. The search
   * starts after the last address given, so a released one is not reused at once.
   */
  lease(config: NetworkConfig, id: string): string {
    const dir = path.join(config.leaseDir, config.name);
    this.makeDir(dir);
    const { base, size } = parseCidr(config.subnet);
    // Neither the network's address, nor the gateway's (the first), nor the broadcast.
    const first = base + 2;
    const count = size - 3;
    let start = this.nextAddress.get(dir);
    if (start === undefined) {
      const last = numberOf(firstLine(path.join(dir, LAST_RESERVED)) ?? '');
      start = last === undefined ? first : last + 1;
    }
    for (let i = 0; i < count; i++) {
      const n = first + ((((start - first + i) % count) + count) % count);
      const ip = ipOf(n);
      if (!createLease(path.join(dir, ip), `${id}\r\neth0`)) continue;
      this.nextAddress.set(dir, n + 1);
      try {
        noteLastReserved(path.join(dir, LAST_RESERVED), ip);
      } catch (err) {
        this.options.log.warn({ err, dir }, 'could not note the last leased address');
      }
      return ip;
    }
    throw new Error(`no free address in ${config.subnet}: all ${count} are leased`);
  }

  /** Deletes the leases of `id` in `dir`, looking first at the address it is said to hold. */
  release(dir: string, id: string, hint?: string): void {
    const holder = (name: string) => firstLine(path.join(dir, name));
    if (hint !== undefined && isIP(hint) === 4 && holder(hint) === id) {
      unlinkSync(path.join(dir, hint));
      return;
    }
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (isIP(name) !== 0 && holder(name) === id) rmSync(path.join(dir, name), { force: true });
    }
  }

  private makeDir(dir: string): void {
    if (this.madeDirs.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.madeDirs.add(dir);
  }
  /**
   * Makes the bridge with its gateway address before any pod exists, for services that
   * listen on that address (the cluster DNS); returns the address.
   */
  async ensureBridge(): Promise<string> {
    await this.remakeBridge(this.bridgeConfig());
    return gatewayOf(this.options.podCidr).gateway;
  }

  /**
   * Makes the bridge of `config` unless this process did already, up and with the gateway
   * address of its subnet: the node's pod subnet, or the one a sandbox's record names when
   * it was attached under earlier settings. Sandboxes set up at the same time share one
   * attempt.
   */
  private bridgeOnce(config: NetworkConfig): Promise<void> {
    const { bridge } = config;
    let ready = this.bridgeReady.get(bridge);
    if (!ready) {
      ready = this.makeBridge(config).catch((err: unknown) => {
        this.bridgeReady.delete(bridge);
        throw err;
      });
      this.bridgeReady.set(bridge, ready);
    }
    return ready;
  }

  /** Makes the bridge of `config` again, whatever this process made of it before. */
  private remakeBridge(config: NetworkConfig): Promise<void> {
    this.bridgeReady.delete(config.bridge);
    return this.bridgeOnce(config);
  }

  private async makeBridge(config: NetworkConfig): Promise<void> {
    const { bridge } = config;
    if (!existsSync(sysNet(bridge))) {
      try {
        await run('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
      } catch (err) {
        if (!/File exists/.test((err as Error).message)) throw err;
      }
    }
    // Also when someone else made it again while no runtime ran (or before this one looked).
    await this.rejoinPorts(config);
    await run('ip', ['link', 'set', 'dev', bridge, 'up']);
    if (await hasGateway(config)) return;
    const { gateway, prefixLength } = gatewayOf(config.subnet);
    try {
      await run('ip', ['addr', 'add', `${gateway}/${prefixLength}`, 'dev', bridge]);
    } catch (err) {
      if (!/already assigned|File exists/.test((err as Error).message)) throw err;
    }
  }

  /**
   * Puts the host ends of the network's attachments (those its leases name) that are on no
   * bridge back on its own: deleting a bridge frees its ports but leaves them, and their
   * pods cut off. Ports of sandboxes the CNI plugins attached have names of their own and are
   * not found; they stay off the bridge. What cannot rejoin is only worth a warning.
   */
  private async rejoinPorts(config: NetworkConfig): Promise<void> {
    const lines: string[] = [];
    for (const port of await this.portsOffBridge(config)) {
      lines.push(`link set dev ${port} master ${config.bridge}`);
      lines.push(`link set dev ${port} type bridge_slave hairpin on`);
    }
    if (lines.length === 0) return;
    const log = this.options.log.child({ bridge: config.bridge, ports: lines.length / 2 });
    try {
      await run('ip', ['-force', '-b', '-'], { input: lines.join('\n') + '\n' });
      log.info('pods put back on their bridge');
    } catch (err) {
      log.warn({ err: detail(err) }, 'pods left off their bridge');
    }
  }

  /** The host ends of the network's attachments (those its leases name) on no bridge. */
  private async portsOffBridge(config: NetworkConfig): Promise<string[]> {
    const dir = path.join(config.leaseDir, config.name);
    const ports: string[] = [];
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const holder = isIP(name) === 4 ? firstLine(path.join(dir, name)) : undefined;
      if (!holder) continue;
      const port = vethName(holder);
      if (existsSync(sysNet(port)) && !existsSync(path.join(sysNet(port), 'master')))
        ports.push(port);
    }
    return ports;
  }

  /**
   * Puts the node's pod network back the way attachments leave it, where something else
   * changed it while pods run: the bridge deleted, set down or stripped of its gateway
   * address, or pods' ports taken off it. Returns what was wrong (nothing: no change). For
   * a periodic check; costs one `ip` run when all is well.
   */
  async repair(): Promise<string[]> {
    const config = this.bridgeConfig();
    const sys = sysNet(config.bridge);
    const wrong: string[] = [];
    if (!existsSync(sys)) wrong.push('bridge missing');
    else {
      // IFF_UP: set up by an administrator, whatever its carrier.
      const flags = Number.parseInt(firstLine(path.join(sys, 'flags')) ?? '0', 16);
      if ((flags & 1) === 0) wrong.push('bridge down');
      if (!(await hasGateway(config))) wrong.push('gateway address missing');
      const off = await this.portsOffBridge(config);
      if (off.length > 0) wrong.push(`${off.length} pod ports off the bridge`);
    }
    if (wrong.length === 0) return wrong;
    this.options.log.warn({ bridge: config.bridge, wrong }, 'repairing the pod network');
    await this.remakeBridge(config);
    return wrong;
  }

  /**
   * Deletes the address leases of the pod network (host-local's files, one per address,
   * naming the attachment id that holds it) whose holder is not in `held`; returns the
   * addresses freed. Only for when no attachment can be in flight (the runtime's start).
   */
  async releaseLeasesExcept(held: Set<string>): Promise<string[]> {
    const dir = path.join(this.options.ipamDir, this.networkName());
    const freed: string[] = [];
    for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      // host-local writes a regular file per address; anything else here is not its lease
      // (and a FIFO or a link to one would stall the read).
      const name = entry.name;
      if (!entry.isFile() || isIP(name) === 0) continue;
      // A lease that cannot be read is kept: freeing an address in use is the worse mistake.
      const holder = firstLine(path.join(dir, name));
      if (holder === undefined || held.has(holder)) continue;
      await fs.rm(path.join(dir, name), { force: true });
      freed.push(name);
    }
    return freed;
  }
}

/** Whether the bridge of `config` has the gateway address of its subnet. */
async function hasGateway(config: NetworkConfig): Promise<boolean> {
  const { gateway, prefixLength } = gatewayOf(config.subnet);
  const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', config.bridge]);
  return stdout.includes(` ${gateway}/${prefixLength} `);
}

/** Runs `ip ARGS`; a device or namespace that is not there is not an error. */
async function ipUnlessGone(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    if (
      !(err instanceof ExecError) ||
      !/Cannot find device|does not exist|No such file/.test(err.stderr)
    )
      throw err;
  }
}

function detail(err: unknown): string {
  if (err instanceof ExecError) return (err.stderr.trim() || err.stdout.trim()).slice(0, 1000);
  return (err as Error).message;
}

/**
 * Creates the lease file `file` holding `text`; false if it exists. A file made but not
 * written (a full disk) is removed: it would name no holder to release it by.
 */
function createLease(file: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeFileSync(fd, text);
  } catch (err) {
    rmSync(file, { force: true });
    throw err;
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Writes `ip` to host-local's file of the last address given. Not through a link, nor into
 * a FIFO, whose opening would wait for a reader with this whole process: either is refused.
 * Written over in place and then cut to its length, rather than emptied first: emptying
 * frees the file's block and the write takes a new one, which cost 65 µs of CPU against
 * 10 on this machine's ext4 (2,000 writes each), and far more in a burst of pods. A torn
 * write (a crash) is a malformed hint, which `lease` reads as none.
 */
function noteLastReserved(file: string, ip: string): void {
  const { O_WRONLY, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = constants;
  const fd = openSync(file, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK);
  try {
    const text = Buffer.from(ip);
    writeSync(fd, text, 0, text.length, 0);
    ftruncateSync(fd, text.length);
  } finally {
    closeSync(fd);
  }
}

/** How much of a lease file is read: its holder's id is on the first line. */
const HEAD_BYTES = 4096;

/**
 * The first line of a regular file, trimmed, from at most its first HEAD_BYTES; undefined
 * when it is not a regular file or cannot be read. Whatever else sits in the lease
 * directory costs no more than that: a huge file is not read whole, a link is not
 * followed, and a FIFO is opened without waiting for a writer.
 */
function firstLine(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const head = Buffer.alloc(HEAD_BYTES);
    const length = readSync(fd, head, 0, HEAD_BYTES, 0);
    return head.toString('utf8', 0, length).split(/\r?\n/)[0].trim();
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
