import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { mountPoints } from '../../src/runtime/fsutil.js';
import { runtimeStateDir } from '../../src/runtime/state-dir.js';

/**
 * Runs `flyces up` as a user would, in a temp data dir on its own ports, pod range and
 * bridge, and hands tests a `kubectl` bound to its kubeconfig.
 */

export const REPO = resolve(import.meta.dirname, '..', '..', '..');
export const FLYCES = join(REPO, 'bin', 'flyces.js');
const run = promisify(execFile);

export interface ClusterOptions {
  podCidr: string;
  bridge: string;
  port: number;
  agentPort: number;
  /** The data dir (made by the caller, removed by destroy); a new temp dir by default. */
  dataDir?: string;
  /** Where flyces up's output goes; flyces-up.log in the data dir by default. */
  logFile?: string;
}

export class TestCluster {
  readonly dataDir: string;
  readonly kubeconfig: string;
  readonly logFile: string;
  private proc?: ChildProcess;

  constructor(readonly opts: ClusterOptions) {
    this.dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'flyces-e2e-'));
    this.kubeconfig = join(this.dataDir, 'kubeconfig');
    this.logFile = opts.logFile ?? join(this.dataDir, 'flyces-up.log');
  }

  /** Starts `flyces up` (with extra flags, e.g. --allow-privileged) and waits for its node. */
  async start(extraArgs: string[] = []): Promise<void> {
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const proc = spawn(
      process.execPath,
      [
        FLYCES,
        'up',
        '--data-dir',
        this.dataDir,
        '--port',
        String(this.opts.port),
        '--agent-port',
        String(this.opts.agentPort),
        '--pod-cidr',
        this.opts.podCidr,
        '--bridge',
        this.opts.bridge,
        '--node-name',
        'e2e-node',
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout!.pipe(log);
    proc.stderr!.pipe(log);
    this.proc = proc;
    await waitFor('the node to be Ready', 60_000, async () => {
      if (proc.exitCode !== null) throw new Error(`flyces up exited: ${this.tail()}`);
      if (!existsSync(this.kubeconfig)) return false;
      try {
        const out = await this.kubectl(
          'get',
          'node',
          'e2e-node',
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        );
        return out.trim() === 'True';
      } catch {
        return false;
      }
    });
  }

  /** Sends SIGINT, as Ctrl-C does, and waits for the process to end. */
  async stop(): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
    proc.kill('SIGINT');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** Kills flyces up with SIGKILL, as a crash or `kill -9` would, and waits for its end. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((res) => proc.once('exit', res));
    proc.kill('SIGKILL');
    await exited;
  }

  async kubectl(...args: string[]): Promise<string> {
    const { stdout } = await run('kubectl', ['--kubeconfig', this.kubeconfig, ...args], {
      maxBuffer: 16 << 20,
    });
    return stdout;
  }

  /** kubectl that resolves with its exit code and both outputs instead of throwing. */
  async kubectlResult(
    ...args: string[]
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run('kubectl', ['--kubeconfig', this.kubeconfig, ...args]);
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof e.code === 'number' ? e.code : 1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      };
    }
  }

  async flyces(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, [FLYCES, ...args], { maxBuffer: 16 << 20 });
    return stdout;
  }

  /**
   * Builds the demo image (examples/build-image.sh) into the data dir and imports it into
   * the node's store; returns the archive's path and what `flyces image import` printed
   * (on stdout, and on stderr).
   */
  async importWebImage(): Promise<{ archive: string; output: string; stderr: string }> {
    const archive = join(this.dataDir, 'web.tar');
    await buildWebImage(archive);
    const { stdout, stderr } = await run(
      process.execPath,
      [FLYCES, 'image', 'import', '--data-dir', this.dataDir, archive],
      { maxBuffer: 16 << 20 },
    );
    return { archive, output: stdout, stderr };
  }

  tail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Stops the cluster, removes every container, namespace and bridge it made, and its files. */
  async destroy(): Promise<void> {
    await this.stop();
    // FLYCES_TEST_LOG=1 prints the end of flyces up's log, for a test that needs a look.
    if (process.env.FLYCES_TEST_LOG) console.log(this.tail(300));
    try {
      await this.flyces('down', '--data-dir', this.dataDir, '--bridge', this.opts.bridge);
      // The agent's runtime state (a tmpfs of its own where /run is on disk) goes too.
      const state = runtimeStateDir(this.dataDir);
      if (existsSync(state) || mountPoints().includes(state))
        throw new Error(`flyces down left ${state} behind`);
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

export async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
      if ((err as Error).message?.startsWith('flyces up exited')) throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`,
  );
}

/** Builds the demo image archive with the project's script. */
export async function buildWebImage(out: string): Promise<void> {
  await run('bash', [join(REPO, 'examples', 'build-image.sh'), out]);
}

export async function httpGet(
  url: string,
  timeoutMs = 3000,
): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

export async function netnsList(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((l) => l);
}

export async function mountsUnder(dir: string): Promise<string[]> {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m && m.startsWith(dir));
}
