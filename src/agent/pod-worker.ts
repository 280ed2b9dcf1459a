import { podResolvConf } from './dns-config.js';
import { cpuMillis, parseQuantity } from '../api/quantity.js';
import { nowTimestamp, type Container, type Pod, type PodStatus } from '../api/types.js';
import type { EventRecorder } from '../client/events.js';
import type { Logger } from '../log.js';
import {
  hideValues,
  RuntimeError,
  type ContainerConfig,
  type ContainerStatus,
  type ImageService,
  type RegistryAuth,
  type RuntimeService,
  type SandboxConfig,
  type SandboxStatus,
} from '../runtime/runtime.js';
import { parseDockerConfigJson } from '../runtime/registry/auth.js';
import { RestartBackoff } from './backoff.js';
import { hookFailure, hookOf, runHook } from './hooks.js';
import { securityOptions } from './security-context.js';
import { expand, referencedSecretValues, resolveEnv } from './env.js';
import { NO_INPUTS, type ContainerInputs } from './volumes.js';
import { Prober, type ProbeTarget, type ProberHooks } from './probes.js';
import { computePodStatus, instancesByName, type Waiting } from './pod-status.js';
import { StartGate } from './start-gate.js';

/**
 * Drives one pod toward its spec on this node: a sandbox, then each container started,
 * restarted per the restart policy with back-off, and everything stopped and removed when
 * the pod is deleted. `sync` is level-triggered: it reads what the runtime has now, so
 * running it twice changes nothing, and after an agent restart it adopts what is running.
 */

export const LABEL_POD_UID = 'flyces.io/pod-uid';
export const LABEL_CONTAINER = 'flyces.io/container-name';
/** postStart has no timeout of its own in Kubernetes; this bounds a hook that hangs. */
const POST_START_TIMEOUT_SECONDS = 30;
/**
 * Seconds the stop signal always gets after a preStop hook, even one that used up the grace
 * period: Kubernetes' one-off extension, so the process still hears its stop signal rather
 * than only SIGKILL.
 */
const AFTER_PRE_STOP_SECONDS = 2;

export interface SyncResult {
  /** The status to report, or undefined when the pod is gone. */
  status?: PodStatus;
  /** Run sync again after this many ms (back-off expiry, periodic check). */
  requeueAfterMs?: number;
  /** The pod's containers are gone and the API object may be removed. */
  terminated?: boolean;
}

/** What the pod worker tells its owner besides its sync's result. */
export interface PodWorkerHooks extends ProberHooks {
  /**
   * The pod's sync is about to wait for something slow (an image pull, a postStart hook)
   * before it returns its status; `status` is the pod's status meanwhile, to report now.
   */
  waiting?(pod: Pod, status: PodStatus): Promise<void>;
}

export class PodWorker {
  private readonly backoff = new RestartBackoff();
  private readonly prober: Prober;
  /** Pull retries: 10 s doubling to 5 minutes, kubelet's image back-off. */
  private readonly imageBackoff = new RestartBackoff(10_000, 300_000);
  /**
   * Why the last create or start of each container (`uid/name`) failed, shown while it
   * waits for its next try (kubelet's reason cache); gone once it starts.
   */
  private readonly startFailures = new Map<string, Waiting>();
  /** Syncs in progress by pod uid, each with the signal that its pod is being deleted. */
  private readonly syncing = new Map<string, AbortController>();
  /** Stops in progress by pod uid: the containers, and when their grace period ends. */
  private readonly stopping = new Map<string, { ids: string[]; endsAt: number }>();

  constructor(
    private readonly runtime: RuntimeService,
    private readonly images: ImageService,
    private readonly events: EventRecorder,
    private readonly hostIP: string,
    private readonly log: Logger,
    private readonly hooks: PodWorkerHooks,
    private readonly inputs: ContainerInputs = NO_INPUTS,
    /** Where start-ups wait their turn; without one, every start-up goes at once. */
    private readonly gate = new StartGate(Number.MAX_SAFE_INTEGER),
  ) {
    this.prober = new Prober(
      runtime,
      events,
      log,
      hooks,
      (pod, text) => this.hide(pod, text),
      (pod, target, grace) => this.stopWithHook(pod, target, grace),
    );
  }

  /** `text` without the values of the Secrets the pod refers to (see hideValues). */
  private hide(pod: Pod, text: string): string {
    return hideValues(text, referencedSecretValues(pod, this.inputs.source));
  }

  /** Stops the probe workers; the containers keep running for the next agent to adopt. */
  stop(): void {
    this.prober.stopAll();
  }

  /**
   * Brings a pod that should run toward its spec and returns its status. A pod with no
   * ready sandbox is starting up, and its whole sync waits its turn at the gate; a running
   * pod's sync waits there only to start a container again.
   */
  async sync(
    pod: Pod,
    sandboxes: SandboxStatus[],
    containers: ContainerStatus[],
  ): Promise<SyncResult> {
    const uid = pod.metadata.uid!;
    const controller = new AbortController();
    this.syncing.set(uid, controller);
    try {
      if (sandboxes.some((s) => s.podUid === uid && s.state === 'ready'))
        return await this.reconcile(pod, sandboxes, containers);
      return await this.gate.run(uid, () => this.reconcile(pod, sandboxes, containers));
    } finally {
      if (this.syncing.get(uid) === controller) this.syncing.delete(uid);
    }
  }

  /**
   * Called when a pod is being deleted or is gone: its sync in progress stops waiting for
   * an image pull or a postStart hook (each may take its timeout, 30 s), and starts no
   * further container, so that the deletion, which waits for that sync, begins at once.
   * The pull goes on for other pods that wait for it; the hook ends with the container.
   */
  abandon(uid: string): void {
    this.syncing.get(uid)?.abort();
  }

  /**
   * Called when a pod being deleted gets a shorter grace period (a second `kubectl delete
   * --grace-period=N`, or a force deletion): if its containers are stopping with a longer
   * one, they get SIGKILL at the end of `graceSeconds` from now instead, as kubelet lets a
   * grace period only shrink. A preStop hook still running ends with its container.
   */
  shortenGrace(uid: string, graceSeconds: number): void {
    const stop = this.stopping.get(uid);
    const endsAt = Date.now() + Math.max(0, graceSeconds) * 1000;
    if (!stop || endsAt >= stop.endsAt) return;
    stop.endsAt = endsAt;
    for (const id of stop.ids) {
      this.runtime.stopContainer(id, Math.max(0, graceSeconds)).catch((err: Error) => {
        this.log.warn({ container: id, err: err.message }, 'could not stop container sooner');
      });
    }
  }

  private abandoned(pod: Pod): AbortSignal | undefined {
    return this.syncing.get(pod.metadata.uid!)?.signal;
  }

  private async reconcile(
    pod: Pod,
    sandboxes: SandboxStatus[],
    containers: ContainerStatus[],
  ): Promise<SyncResult> {
    const uid = pod.metadata.uid!;
    const waiting = new Map<string, Waiting>();
    let sandbox = sandboxes.find((s) => s.podUid === uid && s.state === 'ready');
    let requeueAfterMs = 10_000;
    let startedEarly = false;
    if (!sandbox) {
      const started = await this.startSandbox(pod, sandboxes, waiting);
      if (!started.sandbox)
        return {
          // Without a sandbox every container shows as ContainerCreating.
          status: this.status(pod, undefined, [], new Map()),
          requeueAfterMs: 5_000,
        };
      sandbox = started.sandbox;
      if (started.early) {
        startedEarly = true;
        containers = await this.runtime.listContainers({ sandboxIds: [sandbox.id] });
        requeueAfterMs = Math.min(requeueAfterMs, started.wait ?? requeueAfterMs);
      }
    }
    const mine = containers.filter((c) => c.sandboxId === sandbox!.id);
    const byName = instancesByName(mine);
    const init = await this.syncInitContainers(pod, sandbox, byName, waiting);
    if (init.pending && init.wait !== undefined) requeueAfterMs = init.wait;
    if (!init.pending && !startedEarly) {
      const wait = await this.syncAppContainers(pod, sandbox, byName, waiting);
      if (wait !== undefined) requeueAfterMs = Math.min(requeueAfterMs, wait);
    }
    // With every container already running, this sync changed nothing: skip a second listing.
    const allRunning =
      !init.pending &&
      pod.spec.containers.every((c) => byName.get(c.name)?.[0]?.state === 'running');
    const fresh = allRunning
      ? mine
      : await this.runtime.listContainers({ sandboxIds: [sandbox.id] });
    await this.pruneOldInstances(fresh);
    this.prober.sync(pod, sandbox.ip, fresh);
    return { status: this.status(pod, sandbox, fresh, waiting), requeueAfterMs };
  }

  /**
   * Runs the init containers one at a time, in order; each must exit 0 before the next
   * starts, and app containers start only after the last. A failed one is restarted under
   * the restart policy (never under Never, which fails the pod).
   */
  private async syncInitContainers(
    pod: Pod,
    sandbox: SandboxStatus,
    byName: Map<string, ContainerStatus[]>,
    waiting: Map<string, Waiting>,
  ): Promise<{ pending: boolean; wait?: number }> {
    for (const c of pod.spec.initContainers ?? []) {
      const instances = byName.get(c.name) ?? [];
      const latest = instances[0];
      if (latest?.state === 'exited' && latest.exitCode === 0) continue;
      for (const app of pod.spec.containers) waiting.set(app.name, { reason: 'PodInitializing' });
      if (latest?.state === 'running') return { pending: true };
      if (latest?.state === 'exited' && pod.spec.restartPolicy === 'Never')
        return { pending: true };
      const wait = await this.syncContainer(pod, sandbox, c, instances, waiting);
      return { pending: true, wait };
    }
    return { pending: false };
  }

  private status(
    pod: Pod,
    sandbox: SandboxStatus | undefined,
    containers: ContainerStatus[],
    waiting: Map<string, Waiting>,
  ): PodStatus {
    // A termination message is the container's own words (or its log's end): it may
    // quote a Secret the container was given, which the pod's status must not show.
    const hidden = containers.map((c) =>
      c.message ? { ...c, message: this.hide(pod, c.message) } : c,
    );
    return computePodStatus({
      pod,
      sandbox,
      containers: hidden,
      waiting,
      hostIP: this.hostIP,
      now: nowTimestamp(),
      probes: this.prober,
    });
  }

  /** Starts the app containers in order; returns the soonest time one needs another look. */
  private async syncAppContainers(
    pod: Pod,
    sandbox: SandboxStatus,
    byName: Map<string, ContainerStatus[]>,
    waiting: Map<string, Waiting>,
  ): Promise<number | undefined> {
    let soonest: number | undefined;
    for (const container of pod.spec.containers) {
      if (this.abandoned(pod)?.aborted) break;
      const instances = byName.get(container.name) ?? [];
      const wait = await this.syncContainer(pod, sandbox, container, instances, waiting);
      if (wait !== undefined) soonest = Math.min(soonest ?? wait, wait);
    }
    return soonest;
  }

  /**
   * Makes the pod's sandbox. When the runtime allows it and the pod does not need its IP
   * before its containers start (see startsEarly), the app containers are created and
   * started while the network is being attached; `early` then says so and `wait` is what
   * syncAppContainers returned. Without a sandbox (it failed) `sandbox` is undefined.
   */
  private async startSandbox(
    pod: Pod,
    sandboxes: SandboxStatus[],
    waiting: Map<string, Waiting>,
  ): Promise<{ sandbox?: SandboxStatus; early: boolean; wait?: number }> {
    const uid = pod.metadata.uid!;
    const config: SandboxConfig = {
      podUid: uid,
      podName: pod.metadata.name!,
      podNamespace: pod.metadata.namespace!,
      ...hostNames(pod, this.inputs.dns?.clusterDomain),
      labels: { [LABEL_POD_UID]: uid },
      // Without the node's permission the pod gets a namespace of its own, and its
      // containers are refused with the reason (see securityOptions).
      hostNetwork: pod.spec.hostNetwork === true && this.inputs.allowPrivileged === true,
      hostIP: this.hostIP,
      attempt: sandboxes.filter((s) => s.podUid === uid).length,
      resolvConf: this.inputs.dns ? podResolvConf(pod, this.inputs.dns) : '',
    };
    const id = startsEarly(pod) ? this.runtime.sandboxIdFor?.(config) : undefined;
    const setUp = this.runSandbox(pod, config);
    if (id === undefined) return { sandbox: await setUp, early: false };
    const provisional: SandboxStatus = {
      id,
      podUid: uid,
      podName: config.podName,
      podNamespace: config.podNamespace,
      labels: config.labels,
      state: 'notready',
      createdAt: nowTimestamp(),
    };
    const [sandbox, wait] = await Promise.all([
      setUp,
      this.syncAppContainers(pod, provisional, new Map(), waiting),
    ]);
    return { sandbox, early: true, wait };
  }

  private async runSandbox(pod: Pod, config: SandboxConfig): Promise<SandboxStatus | undefined> {
    try {
      const sandbox = await this.runtime.runSandbox(config);
      this.log.info({ pod: podKey(pod), sandbox: sandbox.id, ip: sandbox.ip }, 'sandbox ready');
      return sandbox;
    } catch (err) {
      const message = (err as Error).message;
      this.log.warn({ pod: podKey(pod), err: message }, 'sandbox failed');
      this.events.warning(
        pod,
        'FailedCreatePodSandBox',
        `Failed to create pod sandbox: ${message}`,
      );
      return undefined;
    }
  }

  /** Returns ms until this container needs another look, if sooner than the periodic sync. */
  private async syncContainer(
    pod: Pod,
    sandbox: SandboxStatus,
    container: Container,
    instances: ContainerStatus[],
    waiting: Map<string, Waiting>,
  ): Promise<number | undefined> {
    const latest = instances[0];
    if (latest?.state === 'running') {
      // The image is the one field of a pod's containers an update may change. As kubelet
      // does, the container is stopped and started again with it, whatever the pod's
      // restart policy, and without back-off.
      if (latest.image === container.image) return undefined;
      await this.stopChanged(pod, sandbox, latest);
      return this.startContainer(pod, sandbox, container, latest.attempt + 1, waiting);
    }
    const key = `${pod.metadata.uid}/${container.name}`;
    if (latest?.state === 'exited') {
      if (!shouldRestart(pod, latest)) return undefined;
      const wait = this.backoff.remaining(
        key,
        Date.parse(latest.startedAt ?? latest.createdAt),
        Date.parse(latest.finishedAt ?? latest.createdAt),
      );
      if (wait > 0) {
        // The period, not the time left: a message that changed at every sync would be a
        // status write at every sync.
        const period = Math.round(this.backoff.period(key) / 1000);
        const message = `back-off ${period}s restarting failed container=${container.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
        waiting.set(container.name, { reason: 'CrashLoopBackOff', message });
        this.events.warning(
          pod,
          'BackOff',
          `Back-off restarting failed container ${container.name} in pod ${pod.metadata.name}`,
        );
        return wait;
      }
      this.backoff.restarted(key);
    } else {
      // A container whose create or start failed is not tried again before its back-off
      // ends, which grows with each failure as a crashing container's does.
      const wait = this.backoff.remaining(key, 0, 0);
      if (wait > 0) {
        waiting.set(container.name, this.startFailures.get(key) ?? { reason: 'ContainerCreating' });
        return wait;
      }
    }
    const attempt = latest ? latest.attempt + 1 : 0;
    if (latest?.state === 'created' || latest?.state === 'unknown')
      await this.removeQuietly(latest.id);
    return this.startContainer(
      pod,
      sandbox,
      container,
      latest?.state === 'exited'
        ? attempt
        : (latest?.attempt ?? restartedFrom(pod, container.name)),
      waiting,
      latest?.state === 'exited',
    );
  }

  private async startContainer(
    pod: Pod,
    sandbox: SandboxStatus,
    container: Container,
    attempt: number,
    waiting: Map<string, Waiting>,
    /** Whether this try already counts in the container's back-off (a restart). */
    counted = false,
  ): Promise<number | undefined> {
    const key = `${pod.metadata.uid}/${container.name}`;
    const imageWait = await this.checkImage(pod, container, waiting);
    if (imageWait !== undefined) return imageWait;
    let config: ContainerConfig;
    try {
      config = await containerConfig(pod, container, attempt, {
        ...this.inputs,
        podIP: sandbox.ip,
        hostIP: this.hostIP,
        warn: (message) => this.events.warning(pod, 'InvalidEnvironmentVariableNames', message),
      });
    } catch (err) {
      return this.configFailed(pod, container, waiting, (err as Error).message);
    }
    let id: string | undefined;
    try {
      const started = await this.gate.run(pod.metadata.uid!, async () => {
        id = await this.runtime.createContainer(sandbox.id, config);
        this.events.normal(pod, 'Created', `Created container ${container.name}`);
        await this.runtime.startContainer(id);
        return id;
      });
      this.events.normal(pod, 'Started', `Started container ${container.name}`);
      this.startFailures.delete(key);
      await this.postStart(pod, sandbox, container, started);
      this.log.info({ pod: podKey(pod), container: container.name, attempt }, 'container started');
      return undefined;
    } catch (err) {
      // The runtime's error can quote the command, which may carry a Secret's value.
      const message = hideValues((err as Error).message, config.hiddenValues);
      if (err instanceof RuntimeError && err.code === 'CreateContainerConfigError') {
        return this.configFailed(pod, container, waiting, message);
      }
      const reason = id === undefined ? 'CreateContainerError' : 'RunContainerError';
      // A container that was created and failed to start has exited (StartError, 128). As
      // kubelet reports it, it waits with the reason only if it is to be tried again; under
      // Never it stays terminated, and the pod's phase follows from that.
      if (id === undefined || startFailureRestarts(pod)) {
        waiting.set(container.name, { reason, message });
      }
      this.startFailures.set(key, { reason, message });
      if (!counted) this.backoff.restarted(key);
      this.events.warning(pod, 'Failed', `Error: ${message}`);
      this.log.warn(
        { pod: podKey(pod), container: container.name, err: message },
        'container failed to start',
      );
      return this.backoff.remaining(key, 0, 0);
    }
  }

  /**
   * A container whose settings cannot be met (a reference that does not resolve, runAsNonRoot
   * with a root user) waits with CreateContainerConfigError and is tried again every 10 s, as
   * kubelet's pod worker does: not a crash, so no growing back-off.
   */
  private configFailed(
    pod: Pod,
    container: Container,
    waiting: Map<string, Waiting>,
    message: string,
  ): number {
    waiting.set(container.name, { reason: 'CreateContainerConfigError', message });
    this.events.warning(pod, 'Failed', `Error: ${message}`);
    this.log.warn(
      { pod: podKey(pod), container: container.name, err: message },
      'container config failed',
    );
    return 10_000;
  }

  /**
   * Makes sure the container's image is in the node's store under its pull policy:
   * Never uses what is there, IfNotPresent pulls when it is missing, Always pulls each time
   * the container starts. Returns ms to wait when the image is not ready (with the waiting
   * reason Kubernetes shows: ErrImagePull, ImagePullBackOff, ErrImageNeverPull,
   * InvalidImageName; see imageNotReady).
   */
  private async checkImage(
    pod: Pod,
    container: Container,
    waiting: Map<string, Waiting>,
  ): Promise<number | undefined> {
    const image = container.image;
    let present: boolean;
    try {
      present = (await this.images.getImage(image)) !== undefined;
    } catch (err) {
      if (err instanceof RuntimeError && err.code === 'InvalidImageName') {
        this.events.warning(pod, 'InspectFailed', err.message);
        this.imageNotReady(pod, container, waiting, 'InvalidImageName', err.message);
        this.log.warn(
          { pod: podKey(pod), container: container.name, image, err: err.message },
          'invalid image name',
        );
        return 60_000;
      }
      throw err;
    }
    const policy = container.imagePullPolicy ?? 'IfNotPresent';
    if (present && policy !== 'Always') {
      this.events.normal(pod, 'Pulled', `Container image "${image}" already present on machine`);
      return undefined;
    }
    if (policy === 'Never') {
      const message = `Container image "${image}" is not present with pull policy of Never`;
      this.events.warning(pod, 'ErrImageNeverPull', message);
      this.imageNotReady(pod, container, waiting, 'ErrImageNeverPull', message);
      return 10_000;
    }
    return this.pull(pod, container, waiting);
  }

  private async pull(
    pod: Pod,
    container: Container,
    waiting: Map<string, Waiting>,
  ): Promise<number | undefined> {
    const image = container.image;
    const key = `${pod.metadata.uid}/${container.name}/image`;
    const wait = this.imageBackoff.remaining(key, 0, 0);
    if (wait > 0) {
      const message = `Back-off pulling image "${image}"`;
      this.events.normal(pod, 'BackOff', message);
      this.imageNotReady(pod, container, waiting, 'ImagePullBackOff', message);
      return wait;
    }
    const secrets = pullSecrets(pod, this.inputs);
    const unusable = secrets.unusable.length
      ? `imagePullSecrets unusable: ${secrets.unusable.join(', ')}`
      : undefined;
    if (unusable) {
      const message = `${unusable}; the image is pulled without them`;
      this.events.warning(pod, 'FailedToRetrieveImagePullSecret', message);
    }
    this.events.normal(pod, 'Pulling', `Pulling image "${image}"`);
    await this.reportWaiting(pod);
    const started = Date.now();
    try {
      const pull = this.images.pullImage(image, { auth: secrets.auth });
      if ((await unlessAbandoned(pull, this.abandoned(pod))) === ABANDONED) return 5_000;
    } catch (err) {
      if (!(err instanceof RuntimeError)) throw err;
      this.imageBackoff.restarted(key);
      const cause = unusable ? `${err.message} (${unusable})` : err.message;
      const message = `Failed to pull image "${image}": ${cause}`;
      this.events.warning(pod, 'Failed', message);
      this.imageNotReady(pod, container, waiting, 'ErrImagePull', message);
      this.log.warn(
        { pod: podKey(pod), container: container.name, image, err: err.message },
        'image pull failed',
      );
      return 5_000;
    }
    this.imageBackoff.forget(key);
    const seconds = ((Date.now() - started) / 1000).toFixed(3);
    this.events.normal(pod, 'Pulled', `Successfully pulled image "${image}" in ${seconds}s`);
    return undefined;
  }

  /**
   * A container whose image is not ready waits with `reason`; and, as in kubelet, whose
   * container start fails on it, the start is also recorded as failed: a Warning `Failed`
   * Event "Error: REASON", after the Event that told what went wrong with the image.
   * Repeats count up one Event (the recorder aggregates by reason and message).
   */
  private imageNotReady(
    pod: Pod,
    container: Container,
    waiting: Map<string, Waiting>,
    reason: string,
    message: string,
  ): void {
    waiting.set(container.name, { reason, message });
    this.events.warning(pod, 'Failed', `Error: ${reason}`);
  }

  /** Keeps the latest and the one before it of each container (for `logs --previous`). */
  private async pruneOldInstances(containers: ContainerStatus[]): Promise<void> {
    for (const instances of instancesByName(containers).values()) {
      for (const old of instances.slice(2))
        if (old.state === 'exited') await this.removeQuietly(old.id);
    }
  }

  /** Stops every container of the pod's sandboxes with the grace period, then removes all. */
  async terminate(
    pod: Pod | undefined,
    sandboxes: SandboxStatus[],
    containers: ContainerStatus[],
    graceSeconds: number,
    /** Given the status of the pod once its containers have stopped, before they go. */
    stopped?: (status: PodStatus) => Promise<void>,
  ): Promise<void> {
    await this.stopRunning(pod, sandboxes, containers, graceSeconds);
    if (pod && stopped && sandboxes.length > 0) {
      const ids = sandboxes.map((s) => s.id);
      const ended = await this.runtime.listContainers({ sandboxIds: ids });
      const hidden = ended.map((c) =>
        c.message ? { ...c, message: this.hide(pod, c.message) } : c,
      );
      const status = computePodStatus({
        pod,
        sandbox: sandboxes[0],
        containers: hidden,
        waiting: new Map(),
        hostIP: this.hostIP,
        now: nowTimestamp(),
        deleted: true,
      });
      await stopped(status);
    }
    for (const sandbox of sandboxes) {
      await this.runtime.stopSandbox(sandbox.id);
      await this.runtime.removeSandbox(sandbox.id);
      await this.inputs.volumes?.removePodVolumes(sandbox.podUid);
      this.backoff.forget(`${sandbox.podUid}/`);
      this.prober.forget(sandbox.podUid);
      this.imageBackoff.forget(`${sandbox.podUid}/`);
      for (const key of this.startFailures.keys()) {
        if (key.startsWith(`${sandbox.podUid}/`)) this.startFailures.delete(key);
      }
    }
  }

  /** Stops the running containers of `sandboxes`, each through preStop and the grace period. */
  private async stopRunning(
    pod: Pod | undefined,
    sandboxes: SandboxStatus[],
    containers: ContainerStatus[],
    graceSeconds: number,
  ): Promise<void> {
    const ids = new Set(sandboxes.map((s) => s.id));
    const running = containers.filter((c) => ids.has(c.sandboxId) && c.state === 'running');
    const uid = pod?.metadata.uid;
    const stop = { ids: running.map((c) => c.id), endsAt: Date.now() + graceSeconds * 1000 };
    if (uid) this.stopping.set(uid, stop);
    try {
      await Promise.all(
        running.map(async (c) => {
          if (pod) this.events.normal(pod, 'Killing', `Stopping container ${c.name}`);
          await this.stopOne(pod, sandboxes, c, graceSeconds);
        }),
      );
    } finally {
      if (uid && this.stopping.get(uid) === stop) this.stopping.delete(uid);
    }
  }

  /** Stops container `c`: its preStop hook (with a pod), then the rest of the grace period. */
  private async stopOne(
    pod: Pod | undefined,
    sandboxes: SandboxStatus[],
    c: ContainerStatus,
    graceSeconds: number,
  ): Promise<void> {
    const spec = pod?.spec.containers.find((x) => x.name === c.name);
    if (!pod || !spec) {
      await this.runtime.stopContainer(c.id, graceSeconds);
      return;
    }
    const podIP = sandboxes.find((s) => s.id === c.sandboxId)?.ip ?? '';
    await this.stopWithHook(pod, { containerId: c.id, podIP, container: spec }, graceSeconds);
  }

  /**
   * Stops a container of `pod` through its preStop hook, if it has one, and the rest of
   * the grace period: for a deletion, a changed spec, or a failed liveness or startup
   * probe alike, as kubelet runs preStop before any kill.
   */
  private async stopWithHook(pod: Pod, target: ProbeTarget, graceSeconds: number): Promise<void> {
    const started = Date.now();
    // As kubelet, no preStop when there is no grace period at all.
    const ran = graceSeconds > 0 && (await this.preStop(pod, target, graceSeconds));
    const left = Math.max(0, graceSeconds - Math.floor((Date.now() - started) / 1000));
    const grace = ran ? Math.max(left, AFTER_PRE_STOP_SECONDS) : left;
    await this.runtime.stopContainer(target.containerId, grace);
  }

  /**
   * Fails a pod the node gives up on (its activeDeadlineSeconds passed, or it was evicted for
   * its ephemeral storage): its containers are
   * stopped through preStop and the grace period, and kept, with their logs, until the pod
   * is deleted; the status it returns is the pod's last, phase Failed with `reason`.
   */
  async fail(
    pod: Pod,
    sandboxes: SandboxStatus[],
    containers: ContainerStatus[],
    reason: string,
    message: string,
    warning = false,
  ): Promise<PodStatus> {
    if (warning) this.events.warning(pod, reason, message);
    else this.events.normal(pod, reason, message);
    this.prober.forget(pod.metadata.uid!);
    await this.stopRunning(
      pod,
      sandboxes,
      containers,
      pod.spec.terminationGracePeriodSeconds ?? 30,
    );
    const fresh = await this.runtime.listContainers({ sandboxIds: sandboxes.map((s) => s.id) });
    const sandbox = sandboxes.find((s) => s.state === 'ready');
    return { ...this.status(pod, sandbox, fresh, new Map()), phase: 'Failed', reason, message };
  }

  /** Stops a running container whose spec changed, through preStop and the grace period. */
  private async stopChanged(pod: Pod, sandbox: SandboxStatus, c: ContainerStatus): Promise<void> {
    this.events.normal(pod, 'Killing', `Container ${c.name} definition changed, will be restarted`);
    await this.stopOne(pod, [sandbox], c, pod.spec.terminationGracePeriodSeconds ?? 30);
  }

  /** Runs postStart; a failing hook kills the container, which then restarts per policy. */
  private async postStart(
    pod: Pod,
    sandbox: SandboxStatus,
    c: Container,
    id: string,
  ): Promise<void> {
    if (!hookOf(c, 'postStart')) return;
    await this.reportWaiting(pod);
    const target = { containerId: id, podIP: sandbox.ip ?? '' };
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    const hook = runHook(c, 'postStart', target, this.runtime, POST_START_TIMEOUT_SECONDS);
    const outcome = await unlessAbandoned(hook, this.abandoned(pod));
    // An abandoned hook's container is stopped by the deletion, within its grace period.
    if (outcome === ABANDONED || outcome.ok) return;
    this.events.warning(
      pod,
      'FailedPostStartHook',
      hookFailure(pod, c, 'postStart', this.hide(pod, outcome.message)),
    );
    // Stopped as any kill stops it, through its preStop hook.
    await this.stopWithHook(pod, { ...target, container: c }, grace);
  }

  /**
   * Reports the status of a pod that has none yet, before a wait of its sync: every
   * container ContainerCreating (kubectl shows that, not Pending) rather than no status
   * until an image pull or a postStart hook ends. A pod with a status keeps it meanwhile.
   */
  private async reportWaiting(pod: Pod): Promise<void> {
    if (pod.status?.containerStatuses || !this.hooks.waiting) return;
    try {
      await this.hooks.waiting(pod, this.status(pod, undefined, [], new Map()));
    } catch (err) {
      this.log.warn({ pod: podKey(pod), err: (err as Error).message }, 'status not reported');
    }
  }

  /**
   * Runs preStop inside the grace period; its failure is reported, the stop goes on.
   * Resolves whether the container has a preStop hook (which ran).
   */
  private async preStop(pod: Pod, target: ProbeTarget, grace: number): Promise<boolean> {
    const c = target.container;
    if (!hookOf(c, 'preStop')) return false;
    const outcome = await runHook(c, 'preStop', target, this.runtime, grace);
    if (!outcome.ok) {
      this.events.warning(
        pod,
        'FailedPreStopHook',
        hookFailure(pod, c, 'preStop', this.hide(pod, outcome.message)),
      );
    }
    return true;
  }

  private async removeQuietly(id: string): Promise<void> {
    try {
      await this.runtime.removeContainer(id);
    } catch (err) {
      this.log.warn({ container: id, err: (err as Error).message }, 'could not remove container');
    }
  }
}

const ABANDONED = Symbol('abandoned');

/** What `work` resolves to, or ABANDONED once `signal` aborts, whichever comes first. */
async function unlessAbandoned<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T | typeof ABANDONED> {
  if (!signal) return work;
  // Once abandoned, how the work ends is nobody's concern.
  work.catch(() => undefined);
  if (signal.aborted) return ABANDONED;
  let onAbort = () => {};
  const abandoned = new Promise<typeof ABANDONED>((resolve) => {
    onAbort = () => resolve(ABANDONED);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, abandoned]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Whether the pod's containers may be created while its network is still being attached:
 * not when their environment names the pod's IP, when a postStart hook may need it, or
 * when init containers must run first.
 */
export function startsEarly(pod: Pod): boolean {
  if ((pod.spec.initContainers ?? []).length > 0) return false;
  return pod.spec.containers.every(
    (c) => !hookOf(c, 'postStart') && !(c.env ?? []).some((e) => namesPodIP(e.valueFrom)),
  );
}

function namesPodIP(valueFrom: unknown): boolean {
  const path = (valueFrom as { fieldRef?: { fieldPath?: unknown } } | undefined)?.fieldRef
    ?.fieldPath;
  return typeof path === 'string' && path.startsWith('status.podIP');
}

function podKey(pod: Pod): string {
  return `${pod.metadata.namespace}/${pod.metadata.name}`;
}

/** Whether a container that failed to start (exit code 128, never 0) is started again. */
function startFailureRestarts(pod: Pod): boolean {
  return (pod.spec.restartPolicy ?? 'Always') !== 'Never';
}

/** Whether an exited container is restarted under the pod's restart policy. */
/**
 * The attempt a container the runtime has no trace of starts at. One the API shows had run
 * (its status names a container) was lost with the runtime's state, by `flyces down` or a
 * reboot: as kubelet, which counts on from the logs such a restart keeps, its restart count
 * goes on from the last one shown instead of starting again at 0.
 */
export function restartedFrom(pod: Pod, name: string): number {
  const shown = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ].find((c) => c.name === name);
  if (!shown?.containerID || !Number.isSafeInteger(shown.restartCount)) return 0;
  return Math.max(0, shown.restartCount) + 1;
}

/**
 * The names a pod's sandbox gives it, as kubelet does: spec.hostname or else the pod's
 * name (cut to 63 characters); with spec.subdomain also the fully qualified
 * hostname.subdomain.namespace.svc.domain; and its hostAliases for /etc/hosts.
 */
export function hostNames(
  pod: Pod,
  clusterDomain = 'cluster.local',
): Pick<SandboxConfig, 'hostname' | 'fqdn' | 'hostAliases'> {
  const spec = pod.spec as Pod['spec'] & {
    hostname?: string;
    subdomain?: string;
    hostAliases?: { ip: string; hostnames?: string[] }[];
  };
  const hostname = (spec.hostname || pod.metadata.name!).slice(0, 63);
  const domain = clusterDomain.replace(/\.$/, '');
  const names: Pick<SandboxConfig, 'hostname' | 'fqdn' | 'hostAliases'> = { hostname };
  if (spec.subdomain) {
    names.fqdn = `${hostname}.${spec.subdomain}.${pod.metadata.namespace}.svc.${domain}`;
  }
  const aliases = (spec.hostAliases ?? []).map((a) => ({ ip: a.ip, hostnames: a.hostnames ?? [] }));
  if (aliases.length > 0) names.hostAliases = aliases;
  return names;
}

export function shouldRestart(pod: Pod, c: ContainerStatus): boolean {
  const policy = pod.spec.restartPolicy ?? 'Always';
  if (policy === 'Always') return true;
  if (policy === 'OnFailure') return c.exitCode !== 0;
  return false;
}

/**
 * The runtime's view of a container spec: the environment resolved from the pod and the
 * objects it names, command and args expanded with it as Kubernetes does, and the pod's
 * volumes set up and mounted. Throws (the container then waits with
 * CreateContainerConfigError) when a reference cannot be resolved; messages carry no values.
 */
/** What a pod's imagePullSecrets give a pull. */
export interface PullSecrets {
  auth: RegistryAuth[];
  /** Each secret that gave nothing, named with why (`"regcred" not found`); no values. */
  unusable: string[];
}

/**
 * Registry credentials from the pod's imagePullSecrets (kubernetes.io/dockerconfigjson).
 * A secret that is missing or malformed is skipped, as kubelet does: the pull may still
 * succeed anonymously. Those skipped are listed, for the Event and the pull's error, so a
 * misspelt name is not left to look like a registry refusing the pod.
 */
export function pullSecrets(pod: Pod, inputs: ContainerInputs): PullSecrets {
  const result: PullSecrets = { auth: [], unusable: [] };
  for (const ref of (pod.spec.imagePullSecrets ?? []) as { name?: string }[]) {
    if (!ref?.name) continue;
    const secret = inputs.source.secret(pod.metadata.namespace!, ref.name);
    const data = secret?.data?.['.dockerconfigjson'];
    if (!secret) {
      result.unusable.push(`"${ref.name}" not found`);
      continue;
    }
    if (typeof data !== 'string') {
      result.unusable.push(`"${ref.name}" has no .dockerconfigjson`);
      continue;
    }
    try {
      result.auth.push(...parseDockerConfigJson(Buffer.from(data, 'base64').toString('utf8')));
    } catch {
      // The parser's message may quote the document, which holds the password.
      result.unusable.push(`"${ref.name}" has no valid .dockerconfigjson`);
    }
  }
  return result;
}

/**
 * A memory quantity in whole bytes, rounded up as Kubernetes reads a limit: the OCI spec
 * takes an integer, and runc refuses "1.5" (or "100m") as JSON it cannot read.
 */
function wholeBytes(quantity: string | number): number | undefined {
  const bytes = parseQuantity(quantity);
  return bytes === undefined ? undefined : Math.ceil(bytes);
}

/** Where the container may leave its last message, and whether its log stands in. */
function terminationMessage(c: Container): ContainerConfig['terminationMessage'] {
  const path = c.terminationMessagePath;
  if (typeof path !== 'string' || path === '') return undefined;
  return { path, fallbackToLogs: c.terminationMessagePolicy === 'FallbackToLogsOnError' };
}

export async function containerConfig(
  pod: Pod,
  c: Container,
  attempt: number,
  inputs: ContainerInputs,
): Promise<ContainerConfig> {
  const { env, warnings } = resolveEnv(pod, c, inputs);
  for (const message of warnings) inputs.warn?.(message);
  const vars = new Map(env.map((e) => [e.name, e.value]));
  const expandAll = (list?: string[]) => list?.map((s) => expand(s, (name) => vars.get(name)));
  const wantsMounts = Array.isArray(c.volumeMounts) && c.volumeMounts.length > 0;
  if (wantsMounts && !inputs.volumes) throw new Error('this agent cannot mount volumes');
  const mounts = inputs.volumes ? await inputs.volumes.mountsFor(pod, c, vars) : [];
  const requests = c.resources?.requests ?? {};
  const limits = c.resources?.limits ?? {};
  return {
    name: c.name,
    image: c.image,
    command: expandAll(c.command),
    args: expandAll(c.args),
    env,
    workingDir: c.workingDir,
    security: securityOptions(pod, c, inputs.allowPrivileged === true),
    mounts,
    attempt,
    labels: { [LABEL_POD_UID]: pod.metadata.uid!, [LABEL_CONTAINER]: c.name },
    hiddenValues: referencedSecretValues(pod, inputs.source),
    terminationMessage: terminationMessage(c),
    stdio: { stdin: c.stdin === true, stdinOnce: c.stdinOnce === true, tty: c.tty === true },
    resources: {
      cpuRequestMillis: requests.cpu !== undefined ? cpuMillis(requests.cpu) : undefined,
      cpuLimitMillis: limits.cpu !== undefined ? cpuMillis(limits.cpu) : undefined,
      memoryLimitBytes: limits.memory !== undefined ? wholeBytes(limits.memory) : undefined,
      pidsLimit: inputs.pidsLimit,
    },
  };
}
