import { existsSync, promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

import type { Logger } from '../log.js';
import { DEFAULT_PATH, ExecError, run } from './exec.js';
import { exists } from './fsutil.js';

/**
 * Pod networking: a named network namespace per sandbox (the `ip netns` convention,
 * /var/run/netns/NAME) attached to a Linux bridge by the CNI `bridge` plugin with
 * `host-local` addresses, plus the `loopback` plugin for `lo`.
 *
 * The bridge plugin runs with isGateway false and ipMasq false: it neither installs NAT
 * rules nor turns on the host's IP forwarding (which isGateway would), so pods reach each
 * other and the host but are never routed to the outside world. miniC puts the gateway
 * address on the bridge itself so the host can reach the pods and pods have a default
 * route to the host.
 */

export interface PodNetworkOptions {
  /** Directory of the CNI plugin binaries, e.g. /usr/lib/cni. */
  cniBinDir: string;
  /** Pod subnet of this node (IPv4 CIDR), e.g. 10.42.0.0/24. */
  podCidr: string;
  /** Name of the node's pod bridge, e.g. flyces0 (at most 15 characters). */
  bridge: string;
  /** Directory for host-local's address leases. */
  ipamDir: string;
  /** Name of the CNI network, kept in the plugins' results; default flyces. */
  networkName?: string;
  log: Logger;
}

/** What CNI ADD produced for one sandbox. */
export interface Attachment {
  ip: string;
  prefixLength: number;
  gateway: string;
}

interface CniResult {
  ips?: { address: string; gateway?: string }[];
}

const NETNS_DIR = '/var/run/netns';
const CNI_VERSION = '1.0.0';

/** Path of a named network namespace. */
export function netnsPath(name: string): string {
  return path.join(NETNS_DIR, name);
}

/** The first host address of an IPv4 CIDR and its prefix length. */
export function gatewayOf(cidr: string): { gateway: string; prefixLength: number } {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!match) throw new Error(`pod CIDR "${cidr}" is not an IPv4 CIDR`);
  const octets = match.slice(1, 5).map(Number);
  const prefixLength = Number(match[5]);
  if (octets.some((o) => o > 255) || prefixLength < 8 || prefixLength > 30) {
    throw new Error(`pod CIDR "${cidr}" is out of range`);
  }
  const base = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefixLength);
  const gw = base - (base % size) + 1;
  const gateway = [24, 16, 8, 0].map((shift) => Math.floor(gw / 2 ** shift) % 256).join('.');
  return { gateway, prefixLength };
}

/** Creates and removes sandbox network namespaces and attaches them to the pod bridge. */
export class PodNetwork {
  private gatewayReady?: Promise<void>;

  constructor(private readonly options: PodNetworkOptions) {
    if (options.bridge.length > 15) throw new Error(`bridge name "${options.bridge}" is too long`);
    gatewayOf(options.podCidr);
  }

  /** The bridge plugin's config; kept with the sandbox so DEL undoes exactly what ADD did. */
  bridgeConfig(): Record<string, unknown> {
    return {
      cniVersion: CNI_VERSION,
      name: this.networkName(),
      type: 'bridge',
      bridge: this.options.bridge,
      isGateway: false,
      ipMasq: false,
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: this.options.podCidr }]],
        routes: [{ dst: '0.0.0.0/0' }],
        dataDir: this.options.ipamDir,
      },
    };
  }

  private networkName(): string {
    return this.options.networkName ?? 'flyces';
  }

  private loopbackConfig(): Record<string, unknown> {
    return { cniVersion: CNI_VERSION, name: 'lo', type: 'loopback' };
  }

  /** Creates the namespace `name` unless it exists. */
  async createNetns(name: string): Promise<void> {
    if (existsSync(netnsPath(name))) return;
    await run('ip', ['netns', 'add', name]);
  }

  /** Deletes the namespace `name`; a missing one is not an error. */
  async deleteNetns(name: string): Promise<void> {
    if (!(await exists(netnsPath(name)))) return;
    await run('ip', ['netns', 'delete', name]);
  }

  /** Runs loopback and bridge ADD for the sandbox and returns its address. */
  async attach(containerId: string, netns: string, config: object): Promise<Attachment> {
    // The two plugins touch different interfaces of the namespace, so they run together.
    const [, out] = await Promise.all([
      this.invoke('ADD', this.loopbackConfig(), containerId, netns, 'lo'),
      this.invoke('ADD', config, containerId, netns, 'eth0'),
    ]);
    const result = JSON.parse(out) as CniResult;
    const address = result.ips?.[0]?.address;
    if (!address) throw new Error(`CNI bridge returned no address: ${out.slice(0, 500)}`);
    const [ip, prefix] = address.split('/');
    await this.ensureGateway();
    const { gateway } = gatewayOf(this.options.podCidr);
    return { ip, prefixLength: Number(prefix), gateway };
  }

  /**
   * Runs bridge DEL, which releases the address and removes the veth; tolerant of a
   * namespace or lease that is already gone. loopback's DEL is not run: it only takes `lo`
   * down in a namespace that is then deleted or attached again (ADD brings `lo` up again),
   * and it holds nothing outside the namespace, so it would cost a process for nothing.
   */
  async detach(containerId: string, netns: string, config: object): Promise<void> {
    await this.invoke('DEL', config, containerId, netns, 'eth0');
  }

  /**
   * Makes the bridge with its gateway address before any pod exists, for services that
   * listen on that address (the cluster DNS); returns the address. The CNI plugin uses the
   * bridge it finds.
   */
  async ensureBridge(): Promise<string> {
    const bridge = this.options.bridge;
    try {
      await run('ip', ['link', 'show', 'dev', bridge]);
    } catch {
      try {
        await run('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
      } catch (err) {
        if (!/File exists/.test((err as Error).message)) throw err;
      }
    }
    await run('ip', ['link', 'set', 'dev', bridge, 'up']);
    await this.ensureGateway();
    return gatewayOf(this.options.podCidr).gateway;
  }

  /**
   * Puts the gateway address on the bridge (the plugin leaves it bare). Sandboxes started at
   * the same time share one attempt; an address another process added meanwhile is fine.
   */
  private ensureGateway(): Promise<void> {
    this.gatewayReady ??= this.addGateway().catch((err) => {
      this.gatewayReady = undefined;
      throw err;
    });
    return this.gatewayReady;
  }

  private async addGateway(): Promise<void> {
    const { gateway, prefixLength } = gatewayOf(this.options.podCidr);
    const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', this.options.bridge]);
    if (stdout.includes(` ${gateway}/${prefixLength} `)) return;
    try {
      await run('ip', ['addr', 'add', `${gateway}/${prefixLength}`, 'dev', this.options.bridge]);
    } catch (err) {
      if (!/already assigned|File exists/.test((err as Error).message)) throw err;
    }
  }

  /**
   * Deletes the address leases of the pod network (host-local's files, one per address,
   * naming the CNI container id that holds it) whose holder is not in `held`; returns the
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
      const text = await fs.readFile(path.join(dir, name), 'utf8').catch(() => undefined);
      if (text === undefined || held.has(text.split(/\r?\n/)[0].trim())) continue;
      await fs.rm(path.join(dir, name), { force: true });
      freed.push(name);
    }
    return freed;
  }

  private async invoke(
    command: 'ADD' | 'DEL',
    config: object,
    containerId: string,
    netns: string,
    ifname: string,
  ): Promise<string> {
    const type = (config as { type: string }).type;
    const plugin = path.join(this.options.cniBinDir, type);
    const env = {
      PATH: DEFAULT_PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: netnsPath(netns),
      CNI_IFNAME: ifname,
      CNI_PATH: this.options.cniBinDir,
    };
    await fs.mkdir(this.options.ipamDir, { recursive: true });
    try {
      const { stdout } = await run(plugin, [], { env, input: JSON.stringify(config) });
      this.options.log.debug({ command, type, ifname, netns }, 'CNI plugin done');
      return stdout;
    } catch (err) {
      // Plugins report errors as JSON on stdout: {"code":..,"msg":..,"details":..}.
      if (!(err instanceof ExecError)) throw err;
      let detail = err.stderr.trim() || err.stdout.trim();
      try {
        const { msg, details } = JSON.parse(err.stdout) as { msg?: string; details?: string };
        detail = `${msg ?? ''} ${details ?? ''}`.trim();
      } catch {
        // Not the JSON error shape; keep the raw output.
      }
      throw new Error(`CNI ${type} ${command} on ${ifname} failed: ${detail}`);
    }
  }
}
