import type { SecurityOptions } from './security.js';

/**
 * The contract between the node agent and miniC, the container runtime. It follows the
 * shape of Kubernetes' CRI: a pod is a sandbox (its network namespace) plus containers
 * that join it. Every record a runtime keeps survives the agent's restart, so a new agent
 * can list what is running and adopt it.
 */

/** An image in the node's store. */
export interface ImageInfo {
  /** Normalised references that point at the image, e.g. docker.io/library/busybox:1. */
  names: string[];
  /** Digest of the image's manifest (sha256:...). */
  digest: string;
  /** Digest of the image's config (the image id). */
  id: string;
  /** Bytes the unpacked layers use on disk. */
  size: number;
}

/**
 * Credentials for one registry, as a caller passes them to a pull: from a pod's image pull
 * secret (see parseDockerConfigJson in registry/auth.ts) or typed by hand.
 */
export interface RegistryAuth {
  /**
   * The registry the credentials are for: a host with optional port (docker.io,
   * 127.0.0.1:5000). A URL such as https://index.docker.io/v1/ counts as its host.
   */
  registry: string;
  username?: string;
  password?: string;
  /** base64 of "username:password", as a docker config's `auth` field holds it. */
  auth?: string;
}

/** What a caller may add to one pull. */
export interface PullImageOptions {
  /** Credentials to offer, matched by registry host; tried before registries.yaml's. */
  auth?: RegistryAuth[];
}

export interface ImageService {
  /**
   * Imports every image of an OCI archive (an OCI image layout in a tar file). The image is
   * stored under `name` when given, otherwise under the archive's
   * `org.opencontainers.image.ref.name` annotations. Verifies every blob's digest.
   */
  importArchive(file: string, name?: string): Promise<ImageInfo[]>;
  /** The image a reference resolves to, after normalisation; undefined if absent. */
  getImage(ref: string): Promise<ImageInfo | undefined>;
  listImages(): Promise<ImageInfo[]>;
  removeImage(ref: string): Promise<void>;
  /**
   * Pulls an image from its registry (or the mirrors configured for it) over the OCI
   * distribution API and stores it under the normalised reference. Every blob is checked
   * against its digest before it reaches the store. Concurrent calls for one reference share
   * one pull. Fails with RuntimeError('ErrImagePull') when the registry refuses, the network
   * fails, a digest does not match or a size bound is broken; the store is then unchanged.
   */
  pullImage(ref: string, opts?: PullImageOptions): Promise<ImageInfo>;
}

export interface SandboxConfig {
  /** The pod's uid; the sandbox id is derived from it and the attempt. */
  podUid: string;
  podName: string;
  podNamespace: string;
  /** Set as the pod's hostname (spec.hostname, or the pod name, as Kubernetes does). */
  hostname: string;
  /** The pod's fully qualified name when it has a subdomain; /etc/hosts names it first. */
  fqdn?: string;
  /** Extra /etc/hosts entries (the pod's hostAliases). */
  hostAliases?: HostAlias[];
  /** Arbitrary labels kept with the sandbox, returned by listSandboxes. */
  labels: Record<string, string>;
  /**
   * Share the node's network namespace instead of getting one (Kubernetes hostNetwork); the
   * pod's IP is then `hostIP`.
   */
  hostNetwork?: boolean;
  hostIP?: string;
  /** How many sandboxes were made for this pod before; part of the sandbox id. Default 0. */
  attempt?: number;
  /** The pod's /etc/resolv.conf; empty when not given. */
  resolvConf?: string;
}

export interface HostAlias {
  ip: string;
  hostnames: string[];
}

export type SandboxState = 'ready' | 'notready';

export interface SandboxStatus {
  id: string;
  podUid: string;
  podName: string;
  podNamespace: string;
  labels: Record<string, string>;
  state: SandboxState;
  /** The pod's IPv4 address on the pod network. */
  ip?: string;
  createdAt: string;
}

export interface Mount {
  containerPath: string;
  hostPath: string;
  readOnly?: boolean;
}

export interface ContainerConfig {
  /** The container's name within its pod. */
  name: string;
  /** Image reference as the pod spec gives it; resolved through the ImageService. */
  image: string;
  /** Overrides the image's entrypoint (Kubernetes `command`). */
  command?: string[];
  /** Overrides the image's cmd (Kubernetes `args`). */
  args?: string[];
  env?: { name: string; value: string }[];
  workingDir?: string;
  mounts?: Mount[];
  /** Restart count this container is created for; kept with the container. */
  attempt: number;
  labels: Record<string, string>;
  /** The pod's and container's securityContext, merged; see security.ts. */
  security?: SecurityOptions;
  resources?: {
    /** CPU limit in millicores (quota); undefined for none. */
    cpuLimitMillis?: number;
    /** CPU request in millicores (shares). */
    cpuRequestMillis?: number;
    /** Memory limit in bytes. */
    memoryLimitBytes?: number;
    /** Most processes the container may have at once (the pids cgroup). */
    pidsLimit?: number;
  };
  /**
   * Values errors and logs about this container must not show: a Secret's, which the
   * container's command, working dir or environment may carry (see hideValues).
   */
  hiddenValues?: string[];
  /**
   * Where the container may leave a last message (Kubernetes' terminationMessagePath; a file
   * of the runtime's is mounted there), and whether its log's end stands in when it leaves
   * none and fails (FallbackToLogsOnError). The message is the exited status's `message`.
   */
  terminationMessage?: { path: string; fallbackToLogs: boolean };
  /**
   * Kubernetes' stdin, stdinOnce and tty. With `stdin`, the container's stdin is a pipe its
   * monitor holds open, so a shell waits on it instead of reading end-of-file from
   * /dev/null at once; with `stdinOnce` too, the monitor closes it once a first attached
   * client leaves. With `tty`, the container's stdio is a terminal (its output reaches the
   * log as one stream, with the terminal's line endings).
   */
  stdio?: ContainerStdio;
}

export interface ContainerStdio {
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
}

/** Shortest value hideValues hides: shorter ones would blank out common words instead. */
const MIN_HIDDEN_LENGTH = 4;

/**
 * `text` with each of `values`, and each as JSON quotes it (runc quotes the command it could
 * not run that way), replaced by `[hidden]`, longest first. Values shorter than
 * MIN_HIDDEN_LENGTH characters stay as they are.
 */
export function hideValues(text: string, values: readonly string[] = []): string {
  const forms = values
    .filter((v) => v.length >= MIN_HIDDEN_LENGTH)
    .flatMap((v) => [v, JSON.stringify(v).slice(1, -1)])
    .sort((a, b) => b.length - a.length);
  for (const form of forms) text = text.split(form).join('[hidden]');
  return text;
}

export type ContainerState = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerStatus {
  id: string;
  sandboxId: string;
  name: string;
  image: string;
  /** Image id (config digest) the container was made from. */
  imageId: string;
  attempt: number;
  labels: Record<string, string>;
  state: ContainerState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** Why it ended, as Kubernetes names it: Completed, Error, OOMKilled, StartError. */
  reason?: string;
  /** Why it ended in words, where the runtime knows: a failed start's error. */
  message?: string;
  /** Path of the container's log file (CRI log format: time stream tag message). */
  logPath: string;
}

/** Stable codes for expected runtime failures, mapped to pod status reasons by the agent. */
export type RuntimeErrorCode =
  | 'ImageNotFound'
  | 'ErrImagePull'
  | 'InvalidImageName'
  | 'CreateContainerError'
  /** The container's settings cannot hold with its image (runAsNonRoot and a root user). */
  | 'CreateContainerConfigError'
  | 'RunContainerError'
  | 'NotFound'
  | 'NetworkError';

export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

/** Narrows listSandboxes to one pod's sandboxes, as CRI's filters do. */
export interface SandboxFilter {
  podNamespace: string;
  podName: string;
}

/** Narrows listContainers to the containers of some sandboxes. */
export interface ContainerFilter {
  sandboxIds: string[];
}

export interface RuntimeService {
  /** Creates the pod's network namespace and attaches it to the pod network. */
  runSandbox(config: SandboxConfig): Promise<SandboxStatus>;
  /**
   * The id runSandbox gives the sandbox of `config`. A runtime that has it lets callers
   * create and start the sandbox's containers while runSandbox is still setting up the
   * network: createContainer and startContainer then wait for the parts they need, the
   * container's process starts only once the network is ready, and both fail if the
   * sandbox does. Runtimes without it need runSandbox to have resolved first.
   */
  sandboxIdFor?(config: SandboxConfig): string;
  /**
   * Puts the node's pod network back where something else changed it (its bridge
   * deleted, set down, stripped of its address, pods' ports taken off); returns what was
   * wrong. For a periodic check by the agent. Runtimes without a pod network lack it.
   */
  repairNetwork?(): Promise<string[]>;
  /**
   * The disk a container takes of the node's ephemeral storage: its writable layer and its
   * log, in bytes (what kubelet holds against its `ephemeral-storage` limit).
   */
  containerDiskUsage?(id: string): Promise<number>;
  /**
   * Lets go of what the runtime keeps ready for the next start and cannot hand to another
   * process (miniC's warm container monitor), when the agent stops. Containers keep running.
   */
  close?(): Promise<void>;
  /** Stops every container of the sandbox and detaches its network; idempotent. */
  stopSandbox(id: string): Promise<void>;
  /** Removes the sandbox, its containers and everything kept for them; idempotent. */
  removeSandbox(id: string): Promise<void>;
  /** The sandboxes, or those of one pod (by namespace and name) with a filter. */
  listSandboxes(filter?: SandboxFilter): Promise<SandboxStatus[]>;

  /** Writes the container's bundle and root file system; does not start it. */
  createContainer(sandboxId: string, config: ContainerConfig): Promise<string>;
  /** Starts a created container under its monitor (conmon). */
  startContainer(id: string): Promise<void>;
  /**
   * Sends SIGTERM (or the image's stop signal), waits up to graceSeconds for the
   * container to exit, then SIGKILL. Resolves once it has exited; idempotent. A call while
   * another stop of the container waits out its grace period brings that stop's SIGKILL
   * forward to its own grace period, if that ends sooner (a deletion's grace period may be
   * shortened while the pod stops).
   */
  stopContainer(id: string, graceSeconds: number): Promise<void>;
  /** Removes a stopped container, its bundle and its root file system; keeps nothing. */
  removeContainer(id: string): Promise<void>;
  /** The containers, or those of the given sandboxes with a filter. */
  listContainers(filter?: ContainerFilter): Promise<ContainerStatus[]>;
  containerStatus(id: string): Promise<ContainerStatus | undefined>;
  /**
   * Runs a command in a running container and waits up to timeoutMs for it (probes,
   * hooks). A non-zero exit is reported in the result; NotFound if the container is gone.
   */
  execSync(id: string, command: string[], timeoutMs: number): Promise<ExecResult>;
  /**
   * Starts a command in a running container with its streams handed to the caller
   * (`kubectl exec`). Resolves once it has started; NotFound if the container is not
   * running. The caller must read stdout and stderr, and should kill() when it goes away.
   */
  execStream(id: string, command: string[], opts: ExecStreamOptions): Promise<ExecSession>;
  /**
   * The stdin of a running container started with `stdio.stdin` (`kubectl attach -i`); its
   * output is in its log. Absent where the runtime cannot attach.
   */
  attachStdin?(id: string): Promise<AttachedStdin>;
  /** Sets the size of a running container's terminal (`stdio.tty`); no error if it has none. */
  resizeTerminal?(id: string, cols: number, rows: number): void;
}

/** A container's stdin while an attach session lasts (see attach.ts). */
export interface AttachedStdin {
  stream: NodeJS.WritableStream;
  /** Ends the session's stdin; a container with stdinOnce then reads its end. */
  close(): void;
}

export interface ExecResult {
  /** The command's exit code; undefined when it was killed at the timeout. */
  exitCode?: number;
  timedOut: boolean;
  /** stdout and stderr together, truncated to a few KiB. */
  output: string;
}

/** How a streaming exec is wired: which of the command's streams the caller uses. */
export interface ExecStreamOptions {
  /** Whether the caller writes the command's stdin; otherwise stdin is empty. */
  stdin: boolean;
  /** Whether the command runs on a terminal (stdout and stderr are then one stream). */
  tty: boolean;
  /** The terminal's size when the command starts; later changes go through resize(). */
  size?: { cols: number; rows: number };
}

/** How a streamed command ended. */
export interface ExecExit {
  /** The command's exit code; 126/127 when it could not be started (as shells report). */
  exitCode: number;
  /** Why the runtime could not start the command, when it could not. */
  startError?: string;
}

/**
 * A command running in a container, started by RuntimeService.execStream. `exited`
 * resolves once the command has ended and stdout and stderr have been read to their end.
 */
export interface ExecSession {
  /** The command's stdin; undefined unless asked for. End it to close the command's stdin. */
  stdin?: NodeJS.WritableStream;
  stdout: NodeJS.ReadableStream;
  /** Empty for a terminal, whose output all arrives on stdout. */
  stderr: NodeJS.ReadableStream;
  exited: Promise<ExecExit>;
  /** Sets the terminal's size; does nothing without a terminal. */
  resize(cols: number, rows: number): void;
  /** Kills the command (SIGKILL) if it still runs; `exited` then resolves. */
  kill(): void;
}
