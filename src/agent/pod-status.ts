import type {
  Condition,
  ContainerStateValue,
  ContainerStatus as ApiContainerStatus,
  Pod,
  PodStatus,
} from '../api/types.js';
import type { ContainerStatus, SandboxStatus } from '../runtime/runtime.js';

/**
 * Turns what the runtime reports about a pod's containers into the pod's status, following
 * Kubernetes' rules for phase, container states and conditions. Pure: the pod worker calls it
 * after each sync and writes the result only if it differs from what the API has.
 */

/** Why a container is not running, when the agent knows better than the runtime. */
export interface Waiting {
  reason: string;
  message?: string;
}

export interface PodObservation {
  pod: Pod;
  sandbox?: SandboxStatus;
  /** Every container instance of the pod that the runtime still keeps, any attempt. */
  containers: ContainerStatus[];
  /** Reasons a container is waiting, by container name (image missing, back-off ...). */
  waiting: Map<string, Waiting>;
  hostIP: string;
  now: string;
  /** Probe results by container id; undefined means the container declares no such probe. */
  probes?: ProbeResults;
  /**
   * The pod is being deleted and its containers have stopped: as kubelet gives such a pod,
   * its phase is terminal, Succeeded if every container exited 0, else Failed.
   */
  deleted?: boolean;
}

export interface ProbeResults {
  ready(containerId: string): boolean | undefined;
  started(containerId: string): boolean | undefined;
}

const RUNTIME_PREFIX = 'minic://';

/** The latest and the previous instance of each container, by name. */
export function instancesByName(containers: ContainerStatus[]): Map<string, ContainerStatus[]> {
  const byName = new Map<string, ContainerStatus[]>();
  for (const c of containers) {
    const list = byName.get(c.name) ?? [];
    list.push(c);
    byName.set(c.name, list);
  }
  for (const list of byName.values()) list.sort((a, b) => b.attempt - a.attempt);
  return byName;
}

const NEVER_STARTED = '1970-01-01T00:00:00Z';

/**
 * A runtime time (ISO 8601 with milliseconds) as the API's Time: whole seconds, cut, as
 * Kubernetes writes every Time field of a pod's status.
 */
function apiTime(iso: string | undefined): string | undefined {
  return iso?.replace(/\.\d+Z$/, 'Z');
}

function stateOf(c: ContainerStatus | undefined): ContainerStateValue {
  if (!c) return {};
  if (c.state === 'running') return { running: { startedAt: apiTime(c.startedAt) } };
  if (c.state === 'exited') {
    return {
      terminated: {
        exitCode: c.exitCode ?? 137,
        reason: c.reason ?? (c.exitCode === 0 ? 'Completed' : 'Error'),
        ...(c.message ? { message: c.message } : {}),
        // One that never ran shows the epoch, as containerd's zero start time reads in kubelet.
        startedAt: apiTime(c.startedAt) ?? NEVER_STARTED,
        finishedAt: apiTime(c.finishedAt),
        containerID: RUNTIME_PREFIX + c.id,
      },
    };
  }
  return { waiting: { reason: 'ContainerCreating' } };
}

/**
 * Why a container that never ran is waiting, when nothing says better: as kubelet has it,
 * PodInitializing in a pod with init containers (its app containers while those run, and
 * after the pod failed or was evicted during them), ContainerCreating in any other.
 */
function notStartedReason(pod: Pod): string {
  return (pod.spec.initContainers?.length ?? 0) > 0 ? 'PodInitializing' : 'ContainerCreating';
}

function containerStatus(
  name: string,
  image: string,
  instances: ContainerStatus[],
  waiting: Waiting | undefined,
  probes: ProbeResults | undefined,
  notStarted: string,
): ApiContainerStatus {
  const [latest, previous] = instances;
  let state = stateOf(latest);
  if (waiting && !state.running)
    state = {
      waiting: { reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}) },
    };
  else if (!latest) state = { waiting: { reason: notStarted } };
  const running = state.running !== undefined;
  // A container counts as started once running and past its startup probe, and as ready
  // once started and past its readiness probe; no probe means no wait.
  const started = running && latest !== undefined && (probes?.started(latest.id) ?? true);
  const ready = started && (probes?.ready(latest!.id) ?? true);
  const status: ApiContainerStatus = {
    name,
    ready,
    started,
    restartCount: latest ? latest.attempt : 0,
    image,
    imageID: latest?.imageId ?? '',
    state,
    lastState:
      latest && (state.waiting || running) && latest.state === 'exited'
        ? stateOf(latest)
        : stateOf(previous),
  };
  if (latest) status.containerID = RUNTIME_PREFIX + latest.id;
  return status;
}

function condition(
  type: string,
  ok: boolean,
  now: string,
  previous: Condition[] | undefined,
  reason?: string,
): Condition {
  const status = ok ? 'True' : 'False';
  const old = previous?.find((c) => c.type === type);
  const c: Condition = {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now,
  };
  if (!ok && reason) c.reason = reason;
  return c;
}

/** An init container is ready once it has completed successfully, as kubelet reports. */
function initStatus(s: ApiContainerStatus): ApiContainerStatus {
  const done = s.state.terminated?.exitCode === 0;
  return { ...s, ready: done, started: s.state.running !== undefined };
}

/** Kubernetes' pod phase from the containers' states and the restart policy. */
export function podPhase(pod: Pod, statuses: ApiContainerStatus[]): PodStatus['phase'] {
  const policy = pod.spec.restartPolicy ?? 'Always';
  let running = 0;
  let waiting = 0;
  let failed = 0;
  for (const s of statuses) {
    // A container waiting to restart after a run counts by how that run ended.
    const ended = s.state.terminated ?? (s.state.waiting ? s.lastState.terminated : undefined);
    if (s.state.running) running++;
    else if (ended) failed += ended.exitCode === 0 ? 0 : 1;
    else waiting++;
  }
  if (waiting > 0) return 'Pending';
  if (running > 0 || policy === 'Always') return 'Running';
  if (failed > 0) return policy === 'OnFailure' ? 'Running' : 'Failed';
  return 'Succeeded';
}

/** The pod's status as the agent reports it. */
export function computePodStatus(obs: PodObservation): PodStatus {
  const { pod, sandbox, now } = obs;
  const byName = instancesByName(obs.containers);
  const previous = pod.status?.conditions;
  const notStarted = notStartedReason(pod);
  const statuses = pod.spec.containers.map((c) =>
    containerStatus(
      c.name,
      c.image,
      byName.get(c.name) ?? [],
      obs.waiting.get(c.name),
      obs.probes,
      notStarted,
    ),
  );
  const inits = (pod.spec.initContainers ?? []).map((c) =>
    initStatus(
      containerStatus(
        c.name,
        c.image,
        byName.get(c.name) ?? [],
        obs.waiting.get(c.name),
        undefined,
        notStarted,
      ),
    ),
  );
  const initialized = inits.every((s) => s.state.terminated?.exitCode === 0);
  const initFailed = inits.some((s) => (s.state.terminated?.exitCode ?? 0) !== 0);
  let phase = podPhase(pod, statuses);
  if (!initialized) phase = initFailed && pod.spec.restartPolicy === 'Never' ? 'Failed' : 'Pending';
  if (obs.deleted) {
    const succeeded = statuses.every((s) => s.state.terminated?.exitCode === 0);
    phase = initialized && succeeded ? 'Succeeded' : 'Failed';
  }
  const allReady = initialized && statuses.every((s) => s.ready);
  const conditions: Condition[] = [
    condition('PodReadyToStartContainers', sandbox?.state === 'ready', now, previous),
    condition('Initialized', initialized, now, previous, 'ContainersNotInitialized'),
    condition('Ready', allReady && phase === 'Running', now, previous, 'ContainersNotReady'),
    condition('ContainersReady', allReady, now, previous, 'ContainersNotReady'),
    previous?.find((c) => c.type === 'PodScheduled') ??
      condition('PodScheduled', true, now, previous),
  ];
  const status: PodStatus = {
    phase,
    conditions,
    hostIP: obs.hostIP,
    startTime: pod.status?.startTime ?? now,
    containerStatuses: statuses,
  };
  if (inits.length > 0) status.initContainerStatuses = inits;
  if (sandbox?.ip) {
    status.podIP = sandbox.ip;
    status.podIPs = [{ ip: sandbox.ip }];
  }
  return status;
}
