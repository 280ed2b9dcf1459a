import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FLYCES, waitFor } from './cluster.js';

/** A pod as the cluster tests look at it. */
export interface PodView {
  name: string;
  node?: string;
  ip?: string;
  ready: boolean;
  deleting: boolean;
}

/**
 * Machines made of network namespaces on this one machine, for process-level cluster tests.
 * A "lan" namespace holds a bridge; every machine is a namespace of its own joined to it
 * by a veth pair with an address in 10.42.231.0/24. Processes run in a machine with
 * `nsenter --net=...`, so they keep the host's mount namespace (runc, overlay mounts and
 * pods' `ip netns` work as on the host) but see only their machine's links, routes,
 * sysctls and nft tables. Nothing here touches the host's own routes or forwarding.
 *
 * Every namespace and link is named with the prefix `fcl<pid>`; destroy() stops every
 * process it started (by pid), runs the registered cleanups (e.g. `flyces down` per
 * agent), deletes the namespaces (which takes their links and nft tables along) and
 * removes the temp dir, also after a failed test.
 */

const run = promisify(execFile);
export const LAN_PREFIX = '10.42.231';

export interface Proc {
  name: string;
  proc: ChildProcess;
  log: string;
  exited: Promise<number | null>;
}

export class NetnsLab {
  readonly prefix = `fcl${process.pid}`;
  readonly root = mkdtempSync(join(tmpdir(), 'flyces-cluster-'));
  private readonly namespaces: string[] = [];
  private readonly procs = new Set<Proc>();
  private readonly cleanups: (() => Promise<void>)[] = [];
  private lanReady?: Promise<void>;

  /** The full name of a machine's namespace. */
  ns(machine: string): string {
    return `${this.prefix}-${machine}`;
  }

  /** The machine's LAN link (inside its namespace). */
  link(machine: string): string {
    return `${this.prefix}${machine}`;
  }

  /** Creates a namespace with its loopback up. */
  async addNamespace(machine: string): Promise<void> {
    const ns = this.ns(machine);
    await run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  /** Creates a machine namespace and plugs it into the LAN at `10.42.231.<host>`. */
  async addMachine(machine: string, host: number): Promise<string> {
    this.lanReady ??= this.makeLan();
    await this.lanReady;
    await this.addNamespace(machine);
    const ns = this.ns(machine);
    const [inner, outer] = [this.link(machine), `${this.link(machine)}p`];
    await run('ip', [
      ...['link', 'add', inner, 'netns', ns, 'type', 'veth'],
      ...['peer', 'name', outer, 'netns', this.ns('lan')],
    ]);
    await run('ip', ['-n', this.ns('lan'), 'link', 'set', outer, 'master', 'br0', 'up']);
    const ip = `${LAN_PREFIX}.${host}`;
    await run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', inner]);
    await run('ip', ['-n', ns, 'link', 'set', inner, 'up']);
    // As a real machine has one, a default route: without it the node's own connections to
    // a ClusterIP fail the route lookup that comes before the Service rules' DNAT. It leads
    // only into the lab's LAN, where nothing forwards further.
    await this.defaultRoute(machine);
    return ip;
  }

  private async makeLan(): Promise<void> {
    await this.addNamespace('lan');
    await run('ip', ['-n', this.ns('lan'), 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', this.ns('lan'), 'link', 'set', 'br0', 'up']);
  }

  private async defaultRoute(machine: string): Promise<void> {
    await run('ip', [
      '-n',
      this.ns(machine),
      'route',
      'replace',
      'default',
      'dev',
      this.link(machine),
    ]);
  }

  /**
   * Takes a machine's LAN link down or up (its cable pulled or plugged in). The kernel drops
   * the routes through a link that goes down; the default route comes back with the link,
   * as a machine's network configuration would restore it (pod routes are the agent's).
   */
  async setLink(machine: string, up: boolean): Promise<void> {
    const state = up ? 'up' : 'down';
    await run('ip', ['-n', this.ns(machine), 'link', 'set', this.link(machine), state]);
    if (up) await this.defaultRoute(machine);
  }

  /** Runs a command in a machine's namespace and returns its output. */
  async exec(machine: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const { stdout } = await run(
      'nsenter',
      [`--net=/var/run/netns/${this.ns(machine)}`, cmd, ...args],
      { maxBuffer: 16 << 20, timeout: timeoutMs },
    );
    return stdout;
  }

  /** Starts a long-running command in a machine's namespace, its output in ROOT/NAME.log. */
  spawn(
    machine: string,
    name: string,
    cmd: string,
    args: string[],
    env: Record<string, string> = {},
  ): Proc {
    const log = join(this.root, `${name}.log`);
    const out = createWriteStream(log, { flags: 'a' });
    // nsenter execs the command in place (no --fork), so the pid is the command's own.
    const proc = spawn('nsenter', [`--net=/var/run/netns/${this.ns(machine)}`, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    const p: Proc = { name, proc, log, exited: Promise.resolve(null) };
    this.procs.add(p);
    p.exited = new Promise((resolve) =>
      proc.once('exit', (code) => {
        this.procs.delete(p);
        resolve(code);
      }),
    );
    return p;
  }

  /** Starts `flyces ARGS` in a machine's namespace. */
  flyces(machine: string, name: string, args: string[], env: Record<string, string> = {}): Proc {
    return this.spawn(machine, name, process.execPath, [FLYCES, ...args], env);
  }

  /** Registers a cleanup run by destroy() after the processes stopped, latest first. */
  onDestroy(fn: () => Promise<void>): void {
    this.cleanups.unshift(fn);
  }

  tail(p: Proc, lines = 30): string {
    try {
      return readFileSync(p.log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Stops everything this lab made. Never throws; each step runs even if one failed. */
  async destroy(): Promise<void> {
    await Promise.all([...this.procs].map((p) => stopProc(p, 'SIGTERM')));
    for (const fn of this.cleanups) await fn().catch(() => undefined);
    for (const ns of this.namespaces.reverse())
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    for (const mount of mountsUnder(this.root).reverse())
      await run('umount', ['-l', mount]).catch(() => undefined);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Signals a process by its pid and waits for it to end; SIGKILL after 10 s. */
export async function stopProc(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill(signal);
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(timer);
}

export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m && m.startsWith(dir));
}

export interface ServerHandle {
  machine: string;
  proc: Proc;
  dir: string;
  url: string;
  kubeconfig: string;
  token: string;
}

export interface AgentHandle {
  machine: string;
  node: string;
  ip: string;
  dir: string;
  bridge: string;
  proc?: Proc;
}

/** `flyces server` and `flyces agent`s on a NetnsLab, with kubectl run inside the server's. */
export class NetnsCluster {
  server?: ServerHandle;
  readonly agents = new Map<string, AgentHandle>();
  /** Extra environment of the agents, e.g. FLYCES_LOG_LEVEL. */
  agentEnv: Record<string, string> = {};

  constructor(readonly lab: NetnsLab) {}

  /** Starts a server listening on `ip:port` in `machine`; resolves once it wrote its files. */
  async startServer(
    machine: string,
    ip: string,
    port: number,
    extra: string[] = [],
    name = 'server',
  ): Promise<ServerHandle> {
    const dir = join(this.lab.root, name);
    const proc = this.lab.flyces(machine, name, [
      ...['server', '--data-dir', dir, '--port', String(port)],
      ...['--bind-address', ip, '--advertise-address', ip],
      ...extra,
    ]);
    const kubeconfig = join(dir, 'kubeconfig');
    await waitFor(`${name} to write its kubeconfig`, 30_000, async () => {
      if (proc.proc.exitCode !== null) throw new Error(`${name} exited: ${this.lab.tail(proc)}`);
      return existsSync(kubeconfig) && existsSync(join(dir, 'join-token'));
    });
    const token = readFileSync(join(dir, 'join-token'), 'utf8').trim();
    const handle = { machine, proc, dir, url: `https://${ip}:${port}`, kubeconfig, token };
    this.server ??= handle;
    return handle;
  }

  /**
   * Starts (or restarts, on the same data dir, then without the token) a joined agent in
   * `machine`; `flyces down` for its data dir runs in destroy().
   */
  startAgent(machine: string, ip: string, extra: string[] = []): AgentHandle {
    const server = this.server!;
    let agent = this.agents.get(machine);
    const first = !agent;
    if (!agent) {
      agent = {
        machine,
        node: machine,
        ip,
        dir: join(this.lab.root, `agent-${machine}`),
        bridge: `${this.lab.prefix}b`,
      };
      this.agents.set(machine, agent);
      const a = agent;
      this.lab.onDestroy(async () => {
        await this.lab.exec(machine, process.execPath, [
          ...[FLYCES, 'down', '--data-dir', a.dir, '--bridge', a.bridge],
        ]);
      });
    }
    agent.proc = this.lab.flyces(
      machine,
      `agent-${machine}`,
      [
        ...['agent', '--server', server.url, '--node-name', agent.node],
        ...(first ? ['--token', server.token] : []),
        ...['--data-dir', agent.dir, '--node-ip', ip, '--bridge', agent.bridge],
        ...extra,
      ],
      this.agentEnv,
    );
    return agent;
  }

  /** kubectl against the first server, run in the server's namespace. */
  kubectl(...args: string[]): Promise<string> {
    const s = this.server!;
    return this.lab.exec(s.machine, 'kubectl', ['--kubeconfig', s.kubeconfig, ...args]);
  }

  async json<T = any>(...args: string[]): Promise<T> {
    return JSON.parse(await this.kubectl(...args, '-o', 'json')) as T;
  }

  /** The pods with label `app=APP` in the default namespace, as the cluster tests look at them. */
  async pods(app: string): Promise<PodView[]> {
    const list = await this.json<{ items: any[] }>('get', 'pods', '-l', `app=${app}`);
    return list.items.map((p) => ({
      name: p.metadata.name,
      node: p.spec.nodeName,
      ip: p.status?.podIP,
      ready: p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
      deleting: Boolean(p.metadata.deletionTimestamp),
    }));
  }

  /** Waits until the node reports Ready=True (or, with `ready` false, not True). */
  async waitNodeReady(node: string, timeoutMs = 60_000, ready = true): Promise<void> {
    await waitFor(`node ${node} Ready=${ready}`, timeoutMs, async () => {
      const status = await this.kubectl(
        ...['get', 'node', node, '-o'],
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      );
      return (status.trim() === 'True') === ready;
    });
  }
}

export { waitFor };

/** A Deployment `web` of the demo image (examples/build-image.sh) and its Service. */
export function webManifest(replicas: number): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          image: localhost/flyces-web:1
          imagePullPolicy: Never
          ports: [{ containerPort: 8080 }]
          resources: { requests: { cpu: 50m, memory: 16Mi } }
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ port: 8080, targetPort: 8080 }]
`;
}
