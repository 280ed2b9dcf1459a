import { readFileSync } from 'node:fs';
import { RuntimeError } from './runtime.js';

/**
 * A container's securityContext applied to its OCI spec: user and group, capabilities
 * added and dropped from Docker's default set, a read-only root, privilege escalation,
 * the default seccomp profile, and privileged mode where the node allows it.
 */

/** The pod and container securityContext fields miniC honours, merged (container wins). */
export interface SecurityOptions {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  supplementalGroups?: number[];
  readOnlyRootFilesystem?: boolean;
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: {
    type: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
    localhostProfile?: string;
  };
  /** Share the node's process / IPC namespace (pod spec hostPID, hostIPC). */
  hostPID?: boolean;
  hostIPC?: boolean;
}

/** Docker's default capability set, which Kubernetes containers start from. */
export const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Every capability runc 1.1 knows, for privileged containers and `add: [ALL]`. */
export const ALL_CAPS = [
  ...DEFAULT_CAPS,
  'CAP_DAC_READ_SEARCH',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_LEASE',
  'CAP_AUDIT_CONTROL',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** Capability names by their number in the kernel (capability.h), 0 to 40. */
const CAP_BY_NUMBER = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
].map((name) => `CAP_${name}`);

let bounding: Set<string> | undefined;

/**
 * The capabilities this process may hand on (its bounding set). A container can hold no
 * capability outside it, so "all capabilities" means these, as Docker does it.
 */
export function hostCapabilities(): Set<string> {
  if (bounding) return bounding;
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('CapBnd:'));
  const mask = BigInt(`0x${line?.split(/\s+/)[1] ?? '0'}`);
  bounding = new Set(CAP_BY_NUMBER.filter((_, bit) => (mask >> BigInt(bit)) & 1n));
  return bounding;
}

function allCapabilities(): string[] {
  const host = hostCapabilities();
  return ALL_CAPS.filter((c) => host.has(c));
}

/**
 * The default seccomp profile: every system call is allowed except those that reach past
 * the container (kernel modules, keyrings, mounts, namespaces, tracing other processes,
 * clocks, reboot). Docker writes its default as an allow-list; this deny-list blocks the
 * same dangerous calls and stays out of the way of calls new kernels add.
 */
export const DEFAULT_SECCOMP = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    {
      names: [
        'acct',
        'add_key',
        'bpf',
        'clock_adjtime',
        'clock_settime',
        'create_module',
        'delete_module',
        'finit_module',
        'fsconfig',
        'fsmount',
        'fsopen',
        'fspick',
        'get_kernel_syms',
        'init_module',
        'ioperm',
        'iopl',
        'kcmp',
        'kexec_file_load',
        'kexec_load',
        'keyctl',
        'lookup_dcookie',
        'mount',
        'mount_setattr',
        'move_mount',
        'name_to_handle_at',
        'nfsservctl',
        'open_by_handle_at',
        'open_tree',
        'perf_event_open',
        'pivot_root',
        'process_vm_readv',
        'process_vm_writev',
        'ptrace',
        'query_module',
        'quotactl',
        'reboot',
        'request_key',
        'setns',
        'settimeofday',
        'stime',
        'swapoff',
        'swapon',
        'sysfs',
        '_sysctl',
        'umount',
        'umount2',
        'unshare',
        'uselib',
        'userfaultfd',
        'ustat',
        'vm86',
        'vm86old',
      ],
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 1,
    },
  ],
};

function capName(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/** The effective capability set after `add` and `drop` (either may say ALL). */
export function resolveCapabilities(
  caps: SecurityOptions['capabilities'],
  privileged: boolean,
): string[] {
  if (privileged) return allCapabilities();
  const drop = (caps?.drop ?? []).map(capName);
  const add = (caps?.add ?? []).map(capName);
  for (const name of add) {
    if (name !== 'CAP_ALL' && !ALL_CAPS.includes(name)) {
      throw new RuntimeError('CreateContainerError', `unknown capability "${name}"`);
    }
  }
  let set = drop.includes('CAP_ALL') ? [] : DEFAULT_CAPS.filter((c) => !drop.includes(c));
  set = add.includes('CAP_ALL') ? allCapabilities() : [...new Set([...set, ...add])];
  return set;
}

/** uid and gid the process runs as: the securityContext over the image's user. */
export function resolveIdentity(
  sec: SecurityOptions | undefined,
  image: { uid: number; gid: number; additionalGids?: number[] },
): { uid: number; gid: number; additionalGids?: number[] } {
  const uid = sec?.runAsUser ?? image.uid;
  const gid = sec?.runAsGroup ?? (sec?.runAsUser !== undefined ? image.gid : image.gid);
  if (sec?.runAsNonRoot && uid === 0) {
    // kubelet's words, and its reason: the settings, not the runtime, are at fault.
    const message =
      sec.runAsUser === 0
        ? "container's runAsUser breaks non-root policy"
        : 'container has runAsNonRoot and image will run as root';
    throw new RuntimeError('CreateContainerConfigError', message);
  }
  const user: { uid: number; gid: number; additionalGids?: number[] } = { uid, gid };
  // The image user's memberships (its /etc/group) count only while it is that user.
  const memberships = uid === image.uid ? (image.additionalGids ?? []) : [];
  const groups = [...new Set([...memberships, ...(sec?.supplementalGroups ?? [])])];
  if (groups.length > 0) user.additionalGids = groups;
  return user;
}

/** A working directory that would reach the runtime's own file descriptors is refused. */
export function checkWorkingDir(cwd: string): void {
  if (/^\/proc\/(self|thread-self|\d+)\/(fd|task\/\d+\/fd)(\/|$)/.test(cwd)) {
    throw new RuntimeError('CreateContainerError', `working directory ${cwd} is not allowed`);
  }
}

/** Applies the security options to a built spec (process, root, linux sections). */
export function applySecurity(spec: any, sec: SecurityOptions | undefined): void {
  const privileged = sec?.privileged === true;
  const caps = resolveCapabilities(sec?.capabilities, privileged);
  spec.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
  spec.process.noNewPrivileges = !privileged && sec?.allowPrivilegeEscalation === false;
  spec.root.readonly = sec?.readOnlyRootFilesystem === true;
  if (privileged) {
    spec.linux.maskedPaths = [];
    spec.linux.readonlyPaths = [];
    spec.linux.resources.devices = [{ allow: true, access: 'rwm' }];
    return;
  }
  const profile = sec?.seccompProfile?.type ?? 'RuntimeDefault';
  if (profile === 'Localhost') {
    throw new RuntimeError(
      'CreateContainerError',
      'seccompProfile type Localhost is not supported yet',
    );
  }
  if (profile === 'RuntimeDefault') spec.linux.seccomp = DEFAULT_SECCOMP;
}
