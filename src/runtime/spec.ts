import type { RootfsMount } from './rootfs.js';
import { promises as fs } from 'node:fs';

import type { ImageConfig } from './images.js';
import { RuntimeError, type ContainerConfig } from './runtime.js';
import type { ImageIdentity } from './image-user.js';
import { applySecurity, checkWorkingDir, resolveIdentity } from './security.js';

/**
 * Writes the OCI runtime spec (1.0.2, as runc 1.1 reads it) for one container: the
 * process from image config and pod spec resolved the way Kubernetes does, the usual
 * pseudo file systems, the pod's network namespace, cgroup limits from the resources,
 * Docker's default capabilities and runc's default masked and read-only paths.
 *
 * The securityContext is applied by security.ts (capabilities, user, seccomp, read-only root,
 * privileged mode). Not done yet: AppArmor/SELinux labels, user names in
 * the image's User (only numeric uid[:gid] is accepted), and sharing IPC/UTS namespaces between the containers of a pod (each container
 * gets its own; the hostname is the pod's in every one).
 */

export interface SpecInput {
  config: ContainerConfig;
  image: ImageConfig;
  hostname: string;
  /** Path of the sandbox's network namespace. */
  netnsPath?: string;
  /** Files of the sandbox bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf. */
  etcFiles: { hosts: string; hostname: string; resolvConf: string };
  /** cgroups path for runc; relative paths are placed below runc's own cgroup. */
  cgroupsPath: string;
  /** Hard limit for open files the runtime may grant (the host's). */
  nofileLimit: number;
  /** The root file system's overlay, mounted first, over `root.path` (see rootfs.ts). */
  rootfs?: RootfsMount;
  /** The identity the image's User names (see image-user.ts); root by default. */
  imageUser?: ImageIdentity;
}

const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const MAX_NOFILE = 1048576;
const CPU_PERIOD = 100_000;
const MIN_SHARES = 2;
const MIN_QUOTA = 1000;

const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];

const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

const BASE_MOUNTS: SpecMount[] = [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  {
    destination: '/dev',
    type: 'tmpfs',
    source: 'tmpfs',
    options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
  },
  {
    destination: '/dev/pts',
    type: 'devpts',
    source: 'devpts',
    options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
  },
  {
    destination: '/dev/shm',
    type: 'tmpfs',
    source: 'shm',
    options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
  },
  {
    destination: '/dev/mqueue',
    type: 'mqueue',
    source: 'mqueue',
    options: ['nosuid', 'noexec', 'nodev'],
  },
  {
    destination: '/sys',
    type: 'sysfs',
    source: 'sysfs',
    options: ['nosuid', 'noexec', 'nodev', 'ro'],
  },
  {
    destination: '/sys/fs/cgroup',
    type: 'cgroup',
    source: 'cgroup',
    options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
  },
];

function bind(source: string, destination: string, readOnly: boolean): SpecMount {
  const options = ['rbind', 'rprivate'];
  if (readOnly) options.push('ro');
  return { destination, type: 'bind', source, options };
}

/** The process's argv: Kubernetes' rules for command/args over Entrypoint/Cmd. */
export function resolveArgs(config: ContainerConfig, image: ImageConfig): string[] {
  const args = config.command
    ? [...config.command, ...(config.args ?? [])]
    : [...(image.Entrypoint ?? []), ...(config.args ?? image.Cmd ?? [])];
  if (args.length === 0) {
    throw new RuntimeError('CreateContainerError', `container "${config.name}" has no command`);
  }
  return args;
}

/** Image env, then the container's env; a later entry replaces an earlier of the same name. */
export function resolveEnv(
  config: ContainerConfig,
  image: ImageConfig,
  hostname: string,
): string[] {
  const env = new Map<string, string>();
  for (const entry of [DEFAULT_PATH_ENV, `HOSTNAME=${hostname}`, ...(image.Env ?? [])]) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const { name, value } of config.env ?? []) env.set(name, value);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** Kubernetes' mapping of CPU and memory to cgroup v1 values. */
export function resolveResources(resources: ContainerConfig['resources']): Record<string, unknown> {
  const request = resources?.cpuRequestMillis ?? resources?.cpuLimitMillis;
  const cpu: Record<string, number> = {
    shares:
      request === undefined
        ? MIN_SHARES
        : Math.max(MIN_SHARES, Math.floor((request * 1024) / 1000)),
  };
  if (resources?.cpuLimitMillis !== undefined) {
    cpu.quota = Math.max(MIN_QUOTA, Math.floor((resources.cpuLimitMillis * CPU_PERIOD) / 1000));
    cpu.period = CPU_PERIOD;
  }
  const out: Record<string, unknown> = {
    devices: [{ allow: false, access: 'rwm' }],
    cpu,
  };
  if (resources?.memoryLimitBytes !== undefined) {
    out.memory = { limit: resources.memoryLimitBytes };
  }
  if (resources?.pidsLimit !== undefined) out.pids = { limit: resources.pidsLimit };
  return out;
}

/** The hard limit for open files of this process, read from /proc/self/limits. */
export async function hostNofileLimit(): Promise<number> {
  const limits = await fs.readFile('/proc/self/limits', 'utf8');
  const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === undefined || hard === 'unlimited' ? MAX_NOFILE : Number(hard);
}

/** The container's namespaces: its own, except those it shares with the node. */
function namespaces(input: SpecInput): { type: string; path?: string }[] {
  const sec = input.config.security;
  const out: { type: string; path?: string }[] = [{ type: 'uts' }, { type: 'mount' }];
  if (!sec?.hostPID) out.push({ type: 'pid' });
  if (!sec?.hostIPC) out.push({ type: 'ipc' });
  if (input.netnsPath) out.push({ type: 'network', path: input.netnsPath });
  return out;
}

/** The OCI runtime spec (config.json) for one container. */
export function buildSpec(input: SpecInput): Record<string, unknown> {
  const { config, image } = input;
  const nofile = Math.min(MAX_NOFILE, input.nofileLimit);
  const mounts = [
    ...(input.rootfs ? [input.rootfs] : []),
    ...BASE_MOUNTS,
    bind(input.etcFiles.hosts, '/etc/hosts', false),
    bind(input.etcFiles.hostname, '/etc/hostname', false),
    bind(input.etcFiles.resolvConf, '/etc/resolv.conf', false),
    ...(config.mounts ?? []).map((m) => bind(m.hostPath, m.containerPath, m.readOnly ?? false)),
  ];
  const cwd = config.workingDir || image.WorkingDir || '/';
  checkWorkingDir(cwd);
  const spec = {
    ociVersion: '1.0.2',
    process: {
      // conmon (started with -t) hands runc the console socket such a spec needs.
      terminal: config.stdio?.tty === true,
      user: resolveIdentity(config.security, input.imageUser ?? { uid: 0, gid: 0 }),
      args: resolveArgs(config, image),
      env: resolveEnv(config, image, input.hostname),
      cwd,
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
    },
    root: { path: 'rootfs', readonly: false },
    hostname: input.hostname,
    mounts,
    linux: {
      cgroupsPath: input.cgroupsPath,
      resources: resolveResources(config.resources),
      namespaces: namespaces(input),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
  applySecurity(spec, config.security);
  return spec;
}
