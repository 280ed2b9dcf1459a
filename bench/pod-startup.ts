/**
 * Pod start-up latency on this machine: flyCes against bare runc and against podman, all
 * running the same image (examples/build-image.sh: busybox httpd under a small shell).
 *
 * What is measured, per engine, once one at a time (SEQ runs, each removed before the next)
 * and once as a burst (BURST containers asked for at once, BURSTS times):
 *
 * - flyCes: `flyces up` is started as a child process, as a user would, on a private data
 *   dir, ports, pod range 10.42.220.0/24 and bridge flycesbench0; the image is imported
 *   with `flyces image import`. A pod (image localhost/flyces-web:1, imagePullPolicy Never,
 *   cpu request 10m) is created with the project's REST client; the time runs from just
 *   before the POST to the watch event that shows it phase Running with condition Ready
 *   True. In a burst, all pods are POSTed concurrently and each pod's time is counted from
 *   the first POST. The flyces up log (info level) gives each pod's bind, sandbox and
 *   container-start times, printed as a breakdown.
 * - runc: the image is unpacked once with umoci; each container gets its own bundle (a copy
 *   of the root file system and the umoci config with terminal off and RLIMIT_NOFILE at the
 *   host's hard limit), prepared untimed. The time is that of `runc run -d`, which returns
 *   once the container's process runs. Burst: all BURST `runc run -d` spawned at once.
 *   There is no pod network here (runc makes a bare network namespace), no monitor
 *   process and no overlay mount: this is the floor an engine built on runc can approach.
 *   runc's --root, like podman's --runroot and --tmpdir, is on a tmpfs of the bench's own,
 *   as their defaults under /run are on a systemd machine and as flyCes keeps its run-time
 *   state (this machine's /run is on disk).
 * - podman: private --root/--runroot/--tmpdir, image loaded with `podman load`, and
 *   `podman run -d --pull never --network none --runtime runc --cgroup-manager cgroupfs
 *   --ulimit nofile=20000:20000 --ulimit nproc=4096:4096`, timed until it returns (the
 *   container is then running). `--network none` gives the container a namespace with only
 *   loopback and creates nothing under /run/netns. nproc is set because podman's default
 *   (above the host's limit) makes runc fail here. Burst: all BURST runs spawned at once.
 * - docker: Debian's dockerd (with its own containerd and a runc shim per container),
 *   started by the bench on private paths (data root in the temp dir, exec root and
 *   socket on the bench's tmpfs, no bridge, no iptables rules, IP forwarding left as it is,
 *   cgroup parent
 *   flyces-bench-docker), image loaded with `docker load` (converted by skopeo), and
 *   `docker run -d --pull never --network none --ulimit nofile=N:N`, timed until it returns.
 *   Measured when dockerd is installed (bench only: apt-get install -y
 *   --no-install-recommends docker.io); BENCH_ENGINES naming docker requires it.
 *
 * The engines take turns: one container of each, then the next of each, and likewise
 * burst by burst, so that a shared machine whose speed drifts during the run slows all of
 * them alike; before each turn the bench waits for the machine to be quiet, so that what
 * one engine's removals leave running (podman's cleanup process) does not slow the next.
 * flyces up is running (idle) while runc and podman start theirs;
 * the CPU it used meanwhile is printed. One untimed warm-up run precedes each engine's
 * figures. Medians and p99 (nearest rank,
 * so with 20 samples p99 is the maximum) are printed as a table and as one JSON line.
 * Everything started is removed at the end, also on failure or Ctrl-C: the flyces up child
 * (SIGTERM, then `flyces down`), runc containers in the bench's own runc root, podman
 * containers and images in the bench's own podman root, mounts under and the temp dir.
 *
 * Run as root from the repository: npx tsc -p . && node dist/bench/pod-startup.js
 * Environment: BENCH_SEQ (default 20), BENCH_BURST (50), BENCH_BURSTS (3),
 * BENCH_ENGINES (flyces,runc,podman,docker), BENCH_KEEP_LOG=FILE copies the flyces up log,
 * BENCH_CPU_PROF=DIR runs flyces up with --cpu-prof (a sample every 100 µs) into DIR, written
 * when it stops. BENCH_WINDOWS=FILE appends a line per burst, "ENGINE COUNT START END", its
 * start and end in seconds of CLOCK_MONOTONIC, the clock `perf record -k mono` stamps its
 * samples with: bench/cpu-by-command.ts then tells where the machine's CPU went.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { byGroupResource } from '../src/api/resources.js';
import type { Pod } from '../src/api/types.js';
import { loadKubeconfig } from '../src/cli/kubeconfig.js';
import { isReason, KubeClient, type WatchHandle } from '../src/client/rest.js';

const SEQ = intEnv('BENCH_SEQ', 20);
const BURST = intEnv('BENCH_BURST', 50);
const BURSTS = intEnv('BENCH_BURSTS', 3);
const ENGINES = (process.env.BENCH_ENGINES ?? 'flyces,runc,podman,docker').split(',');
const CPU_PROF = process.env.BENCH_CPU_PROF;
const WINDOWS = process.env.BENCH_WINDOWS;
const IMAGE = 'localhost/flyces-web:1';
const BRIDGE = 'flycesbench0';
const POD_CIDR = '10.42.220.0/24';
const NODE = 'bench';
const NAMESPACE = 'default';
const LABEL = 'flyces-bench';
const POD_TIMEOUT_MS = 120_000;
const CMD_TIMEOUT_MS = 60_000;
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FLYCES = join(REPO, 'bin/flyces.js');
const PODS = byGroupResource.get('/pods')!;
const NODES = byGroupResource.get('/nodes')!;

function intEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

/** Milliseconds since the epoch with sub-ms precision, comparable with pino's `time`. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Seconds on CLOCK_MONOTONIC (process.hrtime's clock, and perf's with `-k mono`). */
function monotonic(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** Notes a burst's window for BENCH_WINDOWS: `count` containers of `engine` since `start`. */
function noteWindow(engine: string, count: number, start: number): void {
  if (!WINDOWS) return;
  appendFileSync(WINDOWS, `${engine} ${count} ${start.toFixed(6)} ${monotonic().toFixed(6)}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- processes

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, with a timeout; never throws for a non-zero exit. */
function run(cmd: string, args: string[], timeoutMs = CMD_TIMEOUT_MS): Promise<RunResult> {
  const done = new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  inflight.add(done);
  return done.finally(() => inflight.delete(done));
}

async function must(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(-600)}`);
  return r.stdout;
}

/**
 * Times a command that leaves a container behind it (runc run -d, podman run -d). Its
 * output goes to a file rather than a pipe: a detached container inherits the stdio of
 * its starter, so a pipe would stay open for as long as the container runs.
 */
function timedStart(cmd: string, args: string[], outFile: string): Promise<number> {
  guard();
  const fd = openSync(outFile, 'w');
  const start = now();
  const started = new Promise<number>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), CMD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      const end = now();
      clearTimeout(timer);
      if (code === 0) return resolve(end);
      const out = readFileSync(outFile, 'utf8').trim().slice(-600);
      reject(new Error(`${cmd} ${args.slice(-2).join(' ')} exited ${code}: ${out}`));
    });
  }).finally(() => closeSync(fd));
  inflight.add(started);
  return started.finally(() => inflight.delete(started)).then((end) => end - start);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function onPath(tool: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${tool}`])).code === 0;
}

async function netnsNames(): Promise<Set<string>> {
  const out = await must('ip', ['netns', 'list']);
  return new Set(
    out
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n),
  );
}

function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  const hard = line?.trim().split(/\s+/).at(-2);
  return hard === undefined || hard === 'unlimited' ? 1048576 : Number(hard);
}

// ---------------------------------------------------------------- statistics

interface Stats {
  n: number;
  median: number;
  p99: number;
  max: number;
}

function quantile(sorted: number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    n: sorted.length,
    median: round(quantile(sorted, 0.5)),
    p99: round(quantile(sorted, 0.99)),
    max: round(sorted[sorted.length - 1]),
  };
}

/** A burst's samples and how long until its last container ran, per repeat. */
interface CaseResult {
  samples: number[];
  lastOfBurst?: number[];
}

// ---------------------------------------------------------------- clean-up

type Cleanup = { name: string; fn: () => Promise<void> };
const cleanups: Cleanup[] = [];
const problems: string[] = [];

/** Set by SIGINT/SIGTERM: nothing new is started, and clean-up runs. */
let stopping = false;
/** Commands in flight; clean-up first waits for them, so no container appears after it. */
const inflight = new Set<Promise<unknown>>();

function guard(): void {
  if (stopping) throw new Error('stopped by a signal');
}

/** SIGTERM, then SIGKILL (noted as a problem) if `exited` has not come within 30 s. */
async function stopChild(child: ChildProcess, exited: Promise<void>, name: string): Promise<void> {
  child.kill('SIGTERM');
  const ended = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
  if (ended) return;
  problems.push(`${name} did not stop within 30 s of SIGTERM; killed it`);
  child.kill('SIGKILL');
  await exited;
}

function onCleanup(name: string, fn: () => Promise<void>): void {
  cleanups.push({ name, fn });
}

let draining: Promise<void> | undefined;
/** Runs the registered clean-ups, newest first; safe to call again and concurrently. */
function cleanUp(): Promise<void> {
  draining ??= (async () => {
    await Promise.allSettled([...inflight]);
    for (let c = cleanups.pop(); c; c = cleanups.pop()) {
      try {
        await c.fn();
      } catch (err) {
        problems.push(`clean-up ${c.name}: ${(err as Error).message}`);
      }
    }
    draining = undefined;
  })();
  return draining;
}

/** Unmounts whatever is still mounted under dir, deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    const r = await run('umount', [m]);
    if (r.code !== 0) await must('umount', ['-l', m]);
    problems.push(`had to unmount ${m}`);
  }
}

// ---------------------------------------------------------------- the image

interface Image {
  archive: string;
  layout: string;
  rootfs: string;
  config: any;
}

async function buildImage(tmp: string): Promise<Image> {
  const archive = join(tmp, 'web.tar');
  await must('bash', [join(REPO, 'examples/build-image.sh'), archive], 120_000);
  const policy = join(tmp, 'policy.json');
  writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const layout = join(tmp, 'oci');
  await must('skopeo', [
    '--policy',
    policy,
    'copy',
    '--quiet',
    `oci-archive:${archive}`,
    `oci:${layout}:web`,
  ]);
  const unpacked = join(tmp, 'unpacked');
  await must('umoci', ['unpack', '--image', `${layout}:web`, unpacked]);
  const config = JSON.parse(readFileSync(join(unpacked, 'config.json'), 'utf8'));
  return { archive, layout, rootfs: join(unpacked, 'rootfs'), config };
}

// ---------------------------------------------------------------- bare runc

let runDirMade: Promise<string> | undefined;
/**
 * A tmpfs for runc's and podman's run-time state, as their defaults (/run/runc,
 * /run/containers, /run/libpod) are on a systemd machine: flyCes keeps its own on one
 * (see src/runtime/state-dir.ts), and this machine's /run is on disk.
 */
function runDir(tmp: string): Promise<string> {
  runDirMade ??= (async () => {
    const dir = join(tmp, 'run');
    mkdirSync(dir);
    await must('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=1g', 'flyces-bench-run', dir]);
    onCleanup('run-time state tmpfs', async () => void (await must('umount', [dir])));
    return dir;
  })();
  return runDirMade;
}

async function runcEngine(tmp: string, image: Image): Promise<Engine> {
  const root = join(await runDir(tmp), 'runc');
  const bundles = join(tmp, 'runc-bundles');
  mkdirSync(root);
  mkdirSync(bundles);
  const live = new Set<string>();
  const runc = (...args: string[]) => ['--root', root, ...args];
  const remove = async (id: string) => {
    await must('runc', runc('delete', '-f', id));
    live.delete(id);
    rmSync(join(bundles, id), { recursive: true, force: true });
  };
  onCleanup('runc containers', async () => {
    const listed = (await must('runc', runc('list', '-q'))).split('\n').filter((l) => l);
    for (const id of new Set([...live, ...listed])) await remove(id);
  });
  const nofile = hardLimit('Max open files');
  const prepare = (id: string) => {
    const dir = join(bundles, id);
    mkdirSync(dir);
    cpSync(image.rootfs, join(dir, 'rootfs'), { recursive: true, verbatimSymlinks: true });
    const config = structuredClone(image.config);
    config.process.terminal = false;
    config.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }];
    config.root = { path: 'rootfs', readonly: false };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  };
  const start = (id: string) => {
    const dir = prepare(id);
    live.add(id);
    return timedStart('runc', runc('run', '-d', '--bundle', dir, id), join(tmp, `${id}.out`));
  };
  return {
    name: 'runc',
    async one(id) {
      const ms = await start(id);
      const state = JSON.parse(await must('runc', runc('state', id)));
      if (state.status !== 'running') throw new Error(`runc container ${id} is ${state.status}`);
      await remove(id);
      return ms;
    },
    async burst(ids) {
      const dirs = ids.map(prepare);
      ids.forEach((id) => live.add(id));
      const [t0, m0] = [now(), monotonic()];
      const ends = await Promise.all(
        ids.map((id, i) =>
          timedStart(
            'runc',
            runc('run', '-d', '--bundle', dirs[i], id),
            join(tmp, `${id}.out`),
          ).then(() => now() - t0),
        ),
      );
      noteWindow('runc', ids.length, m0);
      await Promise.all(ids.map(remove));
      return ends;
    },
  };
}

// ---------------------------------------------------------------- podman

async function podmanEngine(tmp: string, image: Image): Promise<Engine> {
  const base = [
    '--root',
    join(tmp, 'podman-root'),
    '--runroot',
    join(await runDir(tmp), 'podman'),
    '--tmpdir',
    join(await runDir(tmp), 'podman-tmp'),
    '--events-backend',
    'file',
    '--runtime',
    'runc',
    '--cgroup-manager',
    'cgroupfs',
  ];
  const podman = (...args: string[]) => [...base, ...args];
  onCleanup('podman storage', async () => {
    await must('podman', podman('rm', '-af', '-t', '0'));
    await must('podman', podman('rmi', '-af'));
    // podman's cgroupfs manager puts containers under this parent; it stays when empty.
    removeEmptyCgroups('libpod_parent');
  });
  await must('podman', podman('load', '-q', '-i', image.archive), 120_000);
  return cliEngine(tmp, 'podman', {
    run: (name) =>
      podman(
        ...RUN_FLAGS,
        '--log-driver',
        'k8s-file',
        ...nofileFlag(),
        ...nproc,
        '--name',
        name,
        IMAGE,
      ),
    remove: (names) => podman('rm', '-f', '-t', '0', ...names),
  });
}

/** `run` flags podman and docker share: detached, no pull, no network, nofile as the host's. */
const RUN_FLAGS = ['run', '-d', '--pull', 'never', '--network', 'none'];
function nofileFlag(): string[] {
  const nofile = hardLimit('Max open files');
  return ['--ulimit', `nofile=${nofile}:${nofile}`];
}
/** podman's default nproc limit is above the host's, which makes runc fail here. */
const nproc = ['--ulimit', 'nproc=4096:4096'];

/**
 * An engine driven by a CLI whose `run -d` returns once the container runs (podman,
 * docker): each start is timed over that command; removal is untimed.
 */
function cliEngine(
  tmp: string,
  cmd: string,
  args: { run: (name: string) => string[]; remove: (names: string[]) => string[] },
): Engine {
  const start = (name: string) => timedStart(cmd, args.run(name), join(tmp, `${name}.out`));
  const remove = (...names: string[]) => must(cmd, args.remove(names));
  return {
    name: cmd,
    async one(name) {
      const ms = await start(name);
      await remove(name);
      return ms;
    },
    async burst(names) {
      const [t0, m0] = [now(), monotonic()];
      const ends = await Promise.all(names.map((n) => start(n).then(() => now() - t0)));
      noteWindow(cmd, names.length, m0);
      await remove(...names);
      return ends;
    },
  };
}

// ---------------------------------------------------------------- docker

const DOCKER_CGROUP = 'flyces-bench-docker';

/**
 * Docker (Debian's docker.io: dockerd with its own containerd, runc under a shim per
 * container), started by hand on private paths as MACHINE-NOTES describes: data root on
 * disk under the bench's temp dir, exec root and socket on the bench's run-time tmpfs, no
 * bridge and no iptables rules, containers under a cgroup parent of the bench's own.
 */
async function dockerEngine(tmp: string, image: Image): Promise<Engine> {
  const runRoot = await runDir(tmp);
  const socket = join(runRoot, 'docker.sock');
  const docker = (...args: string[]) => ['-H', `unix://${socket}`, ...args];
  const logFd = openSync(join(tmp, 'dockerd.log'), 'w');
  const daemon = spawn(
    'dockerd',
    [
      '--data-root',
      join(tmp, 'docker-data'),
      '--exec-root',
      join(runRoot, 'docker'),
      '--pidfile',
      join(runRoot, 'docker.pid'),
      '--host',
      `unix://${socket}`,
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      // dockerd turns the host's IP forwarding on unless told not to.
      '--ip-forward=false',
      '--cgroup-parent',
      DOCKER_CGROUP,
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  onCleanup('dockerd', async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      await run('docker', docker('ps', '-aq')).then(async (r) => {
        const ids = r.stdout.split('\n').filter((l) => l);
        if (ids.length) await must('docker', docker('rm', '-f', ...ids));
      });
      await stopChild(daemon, exited, 'dockerd');
    }
    removeEmptyCgroups(DOCKER_CGROUP);
  });
  for (let waited = 0; ; waited += 100) {
    if ((await run('docker', docker('version'))).code === 0) break;
    if (daemon.exitCode !== null || waited > 30_000)
      throw new Error(`dockerd did not come up; see ${join(tmp, 'dockerd.log')}`);
    await sleep(100);
  }
  const archive = join(tmp, 'web-docker.tar');
  await must('skopeo', [
    '--policy',
    join(tmp, 'policy.json'),
    'copy',
    '--quiet',
    `oci-archive:${image.archive}`,
    `docker-archive:${archive}:${IMAGE}`,
  ]);
  await must('docker', docker('load', '-q', '-i', archive), 120_000);
  return cliEngine(tmp, 'docker', {
    run: (name) => docker(...RUN_FLAGS, ...nofileFlag(), '--name', name, IMAGE),
    remove: (names) => docker('rm', '-f', ...names),
  });
}

/**
 * Removes the cgroup `name`, a parent an engine made, where empty: at each hierarchy's root,
 * and below this process's own cgroup, where an engine that takes the name as relative puts it.
 */
function removeEmptyCgroups(name: string): void {
  const places = readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, name));
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, own] = line.split(':');
    if (own === undefined || own === '/') continue;
    for (const c of controllers === '' ? ['unified'] : controllers.split(','))
      places.push(join('/sys/fs/cgroup', c.replace(/^name=/, ''), own, name));
  }
  for (const dir of places) {
    if (!existsSync(dir)) continue;
    // Deepest first; a cgroup that still holds a process stays.
    const dirs = [dir];
    for (let i = 0; i < dirs.length; i++)
      for (const e of readdirSync(dirs[i], { withFileTypes: true }))
        if (e.isDirectory()) dirs.push(join(dirs[i], e.name));
    for (const d of dirs.reverse()) {
      try {
        rmdirSync(d);
      } catch {
        // Busy or already gone.
      }
    }
  }
}

// ---------------------------------------------------------------- flyCes

/** Follows the bench's pods through one watch (re-opened if the server ends it). */
class PodWatch {
  private readonly running = new Map<string, number>();
  private readonly waiters = new Map<string, () => void>();
  private readonly present = new Set<string>();
  private handle?: WatchHandle;
  private stopped = false;
  private rv = '';
  private loop?: Promise<void>;

  constructor(private readonly client: KubeClient) {}

  async start(): Promise<void> {
    await this.relist();
    this.loop = this.follow();
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<Pod>(PODS, NAMESPACE, { labelSelector: `app=${LABEL}` });
    this.present.clear();
    for (const pod of list.items) this.see('ADDED', pod);
    this.rv = list.resourceVersion;
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      let gone = false;
      this.handle = this.client.watch<Pod>(
        PODS,
        NAMESPACE,
        { labelSelector: `app=${LABEL}`, resourceVersion: this.rv },
        (event) => {
          if (event.type === 'ERROR') {
            gone = (event.object as any)?.code === 410;
            return;
          }
          const rv = event.object?.metadata?.resourceVersion;
          if (rv) this.rv = rv;
          if (event.type !== 'BOOKMARK') this.see(event.type, event.object);
        },
      );
      await this.handle.done;
      if (this.stopped) return;
      if (gone) await this.relist();
      else await sleep(100);
    }
  }

  private see(type: string, pod: Pod): void {
    const name = pod.metadata.name!;
    if (type === 'DELETED') this.present.delete(name);
    else this.present.add(name);
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (type !== 'DELETED' && pod.status?.phase === 'Running' && ready && !this.running.has(name))
      this.running.set(name, now());
    this.waiters.get(name)?.();
  }

  private waitFor(name: string, done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(name);
        reject(new Error(`pod ${name} not ${what} after ${POD_TIMEOUT_MS} ms`));
      }, POD_TIMEOUT_MS);
      this.waiters.set(name, () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(name);
        resolve();
      });
    });
  }

  /** Resolves with the time the watch first showed the pod Running and Ready. */
  async runningAt(name: string): Promise<number> {
    await this.waitFor(name, () => this.running.has(name), 'Running and Ready');
    return this.running.get(name)!;
  }

  gone(name: string): Promise<void> {
    return this.waitFor(name, () => !this.present.has(name), 'deleted');
  }

  /** Forgets a pod's name so it can be used again. */
  forget(name: string): void {
    this.running.delete(name);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.handle?.stop();
    await this.loop;
  }
}

function podManifest(name: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE, labels: { app: LABEL } },
    spec: {
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: 'web',
          image: IMAGE,
          imagePullPolicy: 'Never',
          resources: { requests: { cpu: '10m', memory: '8Mi' } },
        },
      ],
    },
  } as Pod;
}

/** When each pod was asked for, and when the watch saw it Running, in epoch ms. */
interface PodTimes {
  name: string;
  t0: number;
  posted: number;
  running: number;
}

/** CPU spent while pods were starting (from the first POST until all were Running). */
interface CpuUse {
  /** Wall time summed over the measured start-ups, ms. */
  wallMs: number;
  /** CPU time of the flyces up process and its spawn helper, ms. */
  flycesMs: number;
  /** CPU time of the whole machine (all cores, every process), ms. */
  machineMs: number;
  pods: number;
}

/**
 * One engine under test, set up: `one` starts a single container (pod) and returns the
 * time it took, then removes it untimed (`warm`: a warm-up run, not counted); `burst`
 * starts all of `names` at once and returns each one's time from the common start.
 */
interface Engine {
  name: string;
  one(name: string, warm?: boolean): Promise<number>;
  burst(names: string[]): Promise<number[]>;
}

interface FlycesEngine extends Engine {
  log: string;
  times: { seq: PodTimes[]; burst: PodTimes[] };
  cpu: { seq: CpuUse; burst: CpuUse };
  /** CPU time flyces up (and its spawn helper) used so far, in ms. */
  idleCpuMs(): number;
}

const CLOCK_TICK_MS = 10; // USER_HZ is 100 on Linux x86-64 and arm64

/** CPU time of one process (user + system), ms. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

/**
 * CPU time of flyces up and of its spawn helper (the child process that runs miniC's
 * helper programs for it), ms. The programs themselves are counted only machine-wide.
 */
function flycesCpuMs(pid: number): number {
  let total = processCpuMs(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('spawn-helper'))
        total += processCpuMs(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return total;
}

/** Busy CPU time of the machine, all cores (everything but idle and iowait), ms. */
function machineCpuMs(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const t = ticks.map(Number);
  const total = t.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - t[3] - t[4]) * CLOCK_TICK_MS;
}

/**
 * Waits until the machine is quiet (under 10 % busy over 100 ms) or 3 s have passed. An
 * engine's removals may leave work running behind them (podman's cleanup process, a
 * monitor exiting), which must not land on the next engine's turn.
 */
async function settle(): Promise<void> {
  const deadline = now() + 3000;
  while (now() < deadline) {
    const [cpu0, t0] = [machineCpuMs(), now()];
    await sleep(100);
    const busy = (machineCpuMs() - cpu0) / ((now() - t0) * cpus().length);
    if (busy < 0.1) return;
  }
}

async function startCluster(
  tmp: string,
): Promise<{ client: KubeClient; log: string; pid: number }> {
  const dataDir = join(tmp, 'flyces');
  const log = join(tmp, 'flyces-up.log');
  const port = await freePort();
  const agentPort = await freePort();
  guard();
  const logFd = openSync(log, 'w');
  const prof = CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${CPU_PROF}`]
    : [];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...prof,
      FLYCES,
      'up',
      '--data-dir',
      dataDir,
      '--port',
      String(port),
      '--agent-port',
      String(agentPort),
      '--pod-cidr',
      POD_CIDR,
      '--bridge',
      BRIDGE,
      '--node-name',
      NODE,
    ],
    { cwd: REPO, stdio: ['ignore', logFd, logFd], env: process.env },
  );
  closeSync(logFd);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  onCleanup('flyces up and down', async () => {
    if (!exited) await stopChild(child, exit, 'flyces up');
    if (existsSync(dataDir))
      await must(
        process.execPath,
        [FLYCES, 'down', '--data-dir', dataDir, '--bridge', BRIDGE],
        120_000,
      );
  });

  const kubeconfig = join(dataDir, 'kubeconfig');
  const deadline = Date.now() + 60_000;
  const failIfDead = () => {
    if (exited)
      throw new Error(`flyces up exited early: ${readFileSync(log, 'utf8').slice(-1500)}`);
    if (Date.now() > deadline) throw new Error('flyces up did not get ready within 60 s');
  };
  while (!existsSync(kubeconfig)) {
    failIfDead();
    await sleep(100);
  }
  const client = new KubeClient({ ...loadKubeconfig(kubeconfig), userAgent: 'flyces-bench' });
  for (;;) {
    failIfDead();
    try {
      const node: any = await client.get(NODES, undefined, NODE);
      const ready = node.status?.conditions?.find((c: any) => c.type === 'Ready');
      if (ready?.status === 'True') break;
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
    await sleep(100);
  }
  return { client, log, pid: child.pid! };
}

async function flycesEngine(tmp: string, image: Image): Promise<FlycesEngine> {
  const { client, log, pid } = await startCluster(tmp);
  onCleanup('REST client', async () => client.close());
  await must(
    process.execPath,
    [FLYCES, 'image', 'import', '--data-dir', join(tmp, 'flyces'), image.archive],
    120_000,
  );
  const watch = new PodWatch(client);
  await watch.start();
  onCleanup('pod watch', () => watch.stop());

  const newCpu = (): CpuUse => ({ wallMs: 0, flycesMs: 0, machineMs: 0, pods: 0 });
  const cpu = { seq: newCpu(), burst: newCpu() };
  const startPods = async (names: string[], use: CpuUse): Promise<PodTimes[]> => {
    guard();
    const [cpu0, machine0] = [flycesCpuMs(pid), machineCpuMs()];
    const [t0, m0] = [now(), monotonic()];
    const posted = await Promise.all(
      names.map((n) => client.create(PODS, podManifest(n)).then(() => now())),
    );
    const running = await Promise.all(names.map((n) => watch.runningAt(n)));
    if (names.length > 1) noteWindow('flyces', names.length, m0);
    use.wallMs += Math.max(...running) - t0;
    use.flycesMs += flycesCpuMs(pid) - cpu0;
    use.machineMs += machineCpuMs() - machine0;
    use.pods += names.length;
    return names.map((name, i) => ({ name, t0, posted: posted[i], running: running[i] }));
  };
  const deletePods = async (names: string[]) => {
    await Promise.all(names.map((n) => client.delete(PODS, NAMESPACE, n)));
    await Promise.all(names.map((n) => watch.gone(n)));
    names.forEach((n) => watch.forget(n));
  };

  const times = { seq: [] as PodTimes[], burst: [] as PodTimes[] };
  return {
    name: 'flyces',
    log,
    times,
    cpu,
    idleCpuMs: () => flycesCpuMs(pid),
    async one(name, warm) {
      const [t] = await startPods([name], warm ? newCpu() : cpu.seq);
      if (!warm) times.seq.push(t);
      await deletePods([name]);
      return t.running - t.t0;
    },
    async burst(names) {
      const started = await startPods(names, cpu.burst);
      times.burst.push(...started);
      await deletePods(names);
      return started.map((t) => t.running - t.t0);
    },
  };
}

/** Stage times since each pod's first POST, from the flyces up log, median/p99 in ms. */
function breakdown(logFile: string, times: PodTimes[]): Record<string, Stats> {
  const byPod = new Map<string, Record<string, number>>();
  const podOfSandbox = new Map<string, string>();
  const entries: any[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      entries.push(JSON.parse(line));
    } catch {
      continue;
    }
  }
  // A container is created while its sandbox is set up, so its line can come before the
  // first line that names both the sandbox and the pod.
  for (const entry of entries)
    if (typeof entry.pod === 'string' && typeof entry.sandbox === 'string')
      podOfSandbox.set(entry.sandbox, entry.pod);
  for (const entry of entries) {
    const stage: string | undefined = {
      'bound pod': 'bound',
      'sandbox ready': 'sandbox ready',
      'container created': 'container created',
      'container started': 'container started',
    }[entry.msg as string];
    // The runtime's 'container created' names the sandbox, not the pod.
    const pod = entry.pod ?? podOfSandbox.get(entry.sandbox);
    if (!stage || typeof pod !== 'string') continue;
    const name = pod.split('/')[1];
    const stages = byPod.get(name) ?? {};
    stages[stage] ??= entry.time;
    byPod.set(name, stages);
  }
  const columns: Record<string, number[]> = {
    'POST answered': [],
    bound: [],
    'sandbox ready': [],
    'container created': [],
    'container started': [],
    'Running seen': [],
  };
  for (const t of times) {
    const stages = byPod.get(t.name) ?? {};
    columns['POST answered'].push(t.posted - t.t0);
    for (const s of ['bound', 'sandbox ready', 'container created', 'container started'])
      if (stages[s] !== undefined) columns[s].push(stages[s] - t.t0);
    columns['Running seen'].push(t.running - t.t0);
  }
  const out: Record<string, Stats> = {};
  for (const [k, v] of Object.entries(columns)) if (v.length) out[k] = stats(v);
  return out;
}

/** Network namespaces the flyces up log says were made (runtime 'sandbox ready' lines). */
function netnsFromLog(logFile: string): string[] {
  if (!existsSync(logFile)) return [];
  return [...readFileSync(logFile, 'utf8').matchAll(/"netns":"([^"]+)"/g)].map((m) => m[1]);
}

// ---------------------------------------------------------------- report

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function ratio(a?: Stats, b?: Stats): string {
  return a && b && b.median > 0 ? (a.median / b.median).toFixed(2) : 'n/a';
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: flyces up, runc and podman need it');
  for (const tool of ['runc', 'umoci', 'skopeo', 'conmon', 'ip'])
    if (!(await onPath(tool))) throw new Error(`${tool} is not installed`);
  let engines = ENGINES;
  if (engines.includes('podman') && !(await onPath('podman')))
    throw new Error('podman is not installed: apt-get install -y podman (bench only)');
  let dockerVersion = 'not run';
  if (engines.includes('docker') && !(await onPath('dockerd'))) {
    const install = 'apt-get install -y --no-install-recommends docker.io (bench only)';
    if (process.env.BENCH_ENGINES) throw new Error(`docker is not installed: ${install}`);
    process.stderr.write(`docker is not installed, so not measured (${install})\n`);
    dockerVersion = 'not installed';
    engines = engines.filter((e) => e !== 'docker');
  }
  if (!existsSync(join(REPO, 'dist/src/cli/main.js'))) throw new Error('build first: npx tsc -p .');

  const netnsBefore = await netnsNames();
  // Nothing here should change the host's IP forwarding; if something did, it is put back.
  const forwarding = '/proc/sys/net/ipv4/ip_forward';
  const forwardingBefore = readFileSync(forwarding, 'utf8').trim();
  onCleanup('IP forwarding', async () => {
    const now = readFileSync(forwarding, 'utf8').trim();
    if (now === forwardingBefore) return;
    writeFileSync(forwarding, forwardingBefore);
    problems.push(`IP forwarding was turned from ${forwardingBefore} to ${now}; put back`);
  });
  const tmp = mkdtempSync('/tmp/flyces-bench-');
  onCleanup('temp dir', async () => {
    await unmountUnder(tmp);
    rmSync(tmp, { recursive: true, force: true });
  });
  const started = Date.now();
  const progress = (msg: string) => {
    guard();
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);
  };

  progress('building the image');
  const image = await buildImage(tmp);
  const results: Record<string, Record<string, CaseResult>> = {};
  let flyces: FlycesEngine | undefined;
  let podmanVersion = 'not run';
  const set: Engine[] = [];
  if (engines.includes('runc')) {
    progress('setting up bare runc');
    set.push(await runcEngine(tmp, image));
  }
  if (engines.includes('podman')) {
    progress('setting up podman');
    podmanVersion = (await must('podman', ['--version'])).trim().split(' ').at(-1)!;
    set.push(await podmanEngine(tmp, image));
  }
  if (engines.includes('docker')) {
    progress('setting up docker');
    dockerVersion = /version ([^,\s]+)/.exec(await must('dockerd', ['--version']))?.[1] ?? '?';
    set.push(await dockerEngine(tmp, image));
  }
  if (engines.includes('flyces')) {
    progress('setting up flyCes');
    flyces = await flycesEngine(tmp, image);
    set.push(flyces);
  }
  // The engines take turns, one container each, so that a machine whose speed drifts
  // (a shared host) slows all of them alike instead of whichever ran last.
  for (const e of set) {
    results[e.name] = { seq: { samples: [] }, burst: { samples: [], lastOfBurst: [] } };
    await e.one('bench-warm', true);
  }
  // flyces up keeps running while the other engines take their turns: what it uses then.
  let othersMs = 0;
  let idleCpuMs = 0;
  const timed = async <T>(e: Engine, work: () => Promise<T>): Promise<T> => {
    await settle();
    if (e === flyces || !flyces) return work();
    const [t0, cpu0] = [now(), flyces.idleCpuMs()];
    const result = await work();
    othersMs += now() - t0;
    idleCpuMs += flyces.idleCpuMs() - cpu0;
    return result;
  };
  progress(`${SEQ} containers one at a time, the engines taking turns`);
  for (let i = 0; i < SEQ; i++) {
    for (const e of set)
      results[e.name].seq.samples.push(await timed(e, () => e.one(`bench-s${i}`)));
  }
  progress(`${BURSTS} bursts of ${BURST}, the engines taking turns`);
  for (let b = 0; b < BURSTS; b++) {
    for (const e of set) {
      const names = Array.from({ length: BURST }, (_, i) => `bench-b${b}-${i}`);
      const spans = await timed(e, () => e.burst(names));
      results[e.name].burst.samples.push(...spans);
      results[e.name].burst.lastOfBurst!.push(Math.max(...spans));
    }
  }
  const flycesIdle = othersMs > 0 ? idleCpuMs : undefined;
  if (flyces && process.env.BENCH_KEEP_LOG) copyFileSync(flyces.log, process.env.BENCH_KEEP_LOG);
  progress('done measuring');

  const table: Record<string, Record<string, Stats>> = {};
  for (const [engine, cases] of Object.entries(results)) {
    table[engine] = {};
    for (const [name, c] of Object.entries(cases)) {
      table[engine][name] = stats(c.samples);
      if (c.lastOfBurst) table[engine][`${name}:all`] = stats(c.lastOfBurst);
    }
  }
  const rows: string[] = [];
  const label: Record<string, string> = {
    seq: `1 at a time (${SEQ} runs)`,
    burst: `burst of ${BURST}, each (${BURSTS}x)`,
    'burst:all': `burst of ${BURST}, all running (${BURSTS}x)`,
  };
  rows.push(
    `${'engine'.padEnd(8)}${'case'.padEnd(34)}${'n'.padStart(5)}` +
      `${'median ms'.padStart(11)}${'p99 ms'.padStart(10)}`,
  );
  for (const [engine, cases] of Object.entries(table))
    for (const [name, s] of Object.entries(cases))
      rows.push(
        `${engine.padEnd(8)}${(label[name] ?? name).padEnd(34)}${String(s.n).padStart(5)}` +
          `${fmt(s.median).padStart(11)}${fmt(s.p99).padStart(10)}`,
      );
  const f = table.flyces ?? {};
  const ratios = {
    'flyces/runc': {
      seq: ratio(f.seq, table.runc?.seq),
      burst: ratio(f.burst, table.runc?.burst),
      'burst:all': ratio(f['burst:all'], table.runc?.['burst:all']),
    },
    'flyces/podman': {
      seq: ratio(f.seq, table.podman?.seq),
      burst: ratio(f.burst, table.podman?.burst),
      'burst:all': ratio(f['burst:all'], table.podman?.['burst:all']),
    },
    'flyces/docker': {
      seq: ratio(f.seq, table.docker?.seq),
      burst: ratio(f.burst, table.docker?.burst),
      'burst:all': ratio(f['burst:all'], table.docker?.['burst:all']),
    },
  };
  const stages = flyces
    ? {
        seq: breakdown(flyces.log, flyces.times.seq),
        burst: breakdown(flyces.log, flyces.times.burst),
      }
    : undefined;

  console.log(
    `\npod start-up, ${new Date().toISOString().slice(0, 10)}, ` +
      `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, podman ${podmanVersion}, ` +
      `docker ${dockerVersion}`,
  );
  console.log(rows.join('\n'));
  console.log('\nratios of medians (flyCes / other):');
  for (const [k, v] of Object.entries(ratios))
    console.log(
      `  ${k.padEnd(14)} 1 at a time ${v.seq}   burst each ${v.burst}` +
        `   burst all ${v['burst:all']}`,
    );
  if (stages) {
    console.log('\nflyCes stages, ms since the POST was sent (median / p99):');
    for (const [name, cols] of Object.entries(stages)) {
      const parts = Object.entries(cols).map(([k, s]) => `${k} ${fmt(s.median)}/${fmt(s.p99)}`);
      console.log(`  ${(label[name] ?? name).padEnd(30)} ${parts.join(' · ')}`);
    }
  }
  if (flycesIdle !== undefined) {
    console.log(
      `\nflyces up runs throughout; while the other engines ran, it used ` +
        `${fmt((100 * flycesIdle) / othersMs)}% of a core`,
    );
  }
  if (flyces) {
    console.log(
      '\nCPU while pods started (flyces up process and its spawn helper; whole machine, all cores):',
    );
    for (const [name, c] of Object.entries(flyces.cpu))
      console.log(
        `  ${(label[name] ?? name).padEnd(30)} flyces up ${fmt(c.flycesMs / c.pods)} ms/pod` +
          ` (${fmt((100 * c.flycesMs) / c.wallMs)}% of a core)` +
          ` · machine ${fmt((100 * c.machineMs) / c.wallMs / cpus().length)}% busy`,
      );
  }
  console.log(
    JSON.stringify({
      bench: 'pod-startup',
      date: new Date().toISOString(),
      cores: cpus().length,
      memGiB: Math.round(totalmem() / 2 ** 30),
      podman: podmanVersion,
      docker: dockerVersion,
      seq: SEQ,
      burst: BURST,
      bursts: BURSTS,
      results: table,
      ratios,
      flycesStages: stages,
      flycesCpu: flyces?.cpu,
    }),
  );

  const made = flyces ? netnsFromLog(flyces.log) : [];
  await cleanUp();
  const after = await netnsNames();
  const left = made.filter((n) => after.has(n));
  if (left.length) problems.push(`network namespaces left behind: ${left.join(' ')}`);
  const foreign = [...after].filter((n) => !netnsBefore.has(n) && !made.includes(n));
  if (foreign.length)
    process.stderr.write(`note: namespaces not made by this bench appeared: ${foreign}\n`);
  if ((await run('ip', ['link', 'show', BRIDGE])).code === 0)
    problems.push(`bridge ${BRIDGE} is still there`);
}

let exitCode = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    process.stderr.write(`${signal}: cleaning up\n`);
    stopping = true;
    void cleanUp().finally(() => {
      for (const p of problems) process.stderr.write(`problem: ${p}\n`);
      process.exit(130);
    });
  });
try {
  await main();
} catch (err) {
  process.stderr.write(`pod-startup bench failed: ${(err as Error).stack ?? err}\n`);
  exitCode = 1;
} finally {
  await cleanUp();
}
for (const p of problems) process.stderr.write(`problem: ${p}\n`);
process.exit(exitCode || (problems.length ? 1 : 0));
