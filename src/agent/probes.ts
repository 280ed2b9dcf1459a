import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Container, Pod } from '../api/types.js';
import type { EventRecorder } from '../client/events.js';
import type { Logger } from '../log.js';
import type { ContainerStatus, RuntimeService } from '../runtime/runtime.js';
import { grpcProbe, type GrpcAction } from './grpc-probe.js';

/**
 * Container probes with Kubernetes' semantics (exec, httpGet, tcpSocket, grpc). Each
 * running container instance gets one worker per probe it declares. A worker waits
 * initialDelaySeconds, then probes every
 * periodSeconds with timeoutSeconds, and flips its result after successThreshold successes
 * or failureThreshold failures in a row. Readiness results feed the Ready condition;
 * liveness and startup failures kill the container, which the pod worker then restarts
 * under the pod's restart policy. Until a startup probe succeeds, the other two wait.
 */

export type ProbeKind = 'liveness' | 'readiness' | 'startup';

export interface ProbeSpec {
  exec?: { command?: string[] };
  httpGet?: {
    path?: string;
    port: number | string;
    host?: string;
    scheme?: string;
    httpHeaders?: { name: string; value: string }[];
  };
  tcpSocket?: { port: number | string; host?: string };
  grpc?: GrpcAction;
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  terminationGracePeriodSeconds?: number;
}

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

/** Where a probe is aimed: the container instance and the pod's address. */
export interface ProbeTarget {
  containerId: string;
  podIP: string;
  container: Container;
}

const KINDS: ProbeKind[] = ['startup', 'liveness', 'readiness'];
const FIELD: Record<ProbeKind, 'startupProbe' | 'livenessProbe' | 'readinessProbe'> = {
  startup: 'startupProbe',
  liveness: 'livenessProbe',
  readiness: 'readinessProbe',
};

/** The spec of one probe of a container, or undefined if it declares none. */
export function probeOf(container: Container, kind: ProbeKind): ProbeSpec | undefined {
  const spec = container[FIELD[kind]];
  return spec && typeof spec === 'object' ? (spec as ProbeSpec) : undefined;
}

function resolvePort(port: number | string, container: Container): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** Runs one probe attempt and says whether it passed. Never throws. */
export async function runProbe(
  spec: ProbeSpec,
  target: ProbeTarget,
  runtime: RuntimeService,
): Promise<ProbeOutcome> {
  const timeoutMs = Math.max(1, spec.timeoutSeconds ?? 1) * 1000;
  try {
    if (spec.exec) return await execProbe(spec.exec.command ?? [], target, runtime, timeoutMs);
    if (spec.httpGet) return await httpProbe(spec.httpGet, target, timeoutMs);
    if (spec.tcpSocket) return await tcpProbe(spec.tcpSocket, target, timeoutMs);
    if (spec.grpc) return await grpcProbe(spec.grpc, target.podIP, timeoutMs);
    return { ok: false, message: 'probe has no handler (exec, httpGet, tcpSocket or grpc)' };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

async function execProbe(
  command: string[],
  target: ProbeTarget,
  runtime: RuntimeService,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const result = await runtime.execSync(target.containerId, command, timeoutMs);
  if (result.timedOut)
    return { ok: false, message: `command timed out after ${timeoutMs / 1000}s` };
  if (result.exitCode === 0) return { ok: true, message: result.output };
  return { ok: false, message: `command exited with ${result.exitCode}: ${result.output.trim()}` };
}

function httpProbe(
  get: NonNullable<ProbeSpec['httpGet']>,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const port = resolvePort(get.port, target.container);
  if (port === undefined)
    return Promise.resolve({ ok: false, message: `port ${get.port} not found` });
  const https = (get.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  const headers: Record<string, string> = { 'User-Agent': 'flyces-probe/1.0', Accept: '*/*' };
  for (const h of get.httpHeaders ?? []) headers[h.name] = h.value;
  const options = {
    host: get.host || target.podIP,
    port,
    path: get.path || '/',
    headers,
    timeout: timeoutMs,
    // Kubernetes does not verify the certificate of an HTTPS probe either.
    rejectUnauthorized: false,
  };
  const url = `${https ? 'https' : 'http'}://${options.host}:${port}${options.path}`;
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      const ok = code >= 200 && code < 400;
      resolve({ ok, message: ok ? `HTTP ${code}` : `HTTP probe failed with statuscode: ${code}` });
    });
    req.on('timeout', () =>
      req.destroy(
        new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)'),
      ),
    );
    req.on('error', (err) =>
      resolve({ ok: false, message: `Get "${url}": ${netError(err, options.host, port)}` }),
    );
    req.end();
  });
}

function tcpProbe(
  tcp: NonNullable<ProbeSpec['tcpSocket']>,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const port = resolvePort(tcp.port, target.container);
  if (port === undefined)
    return Promise.resolve({ ok: false, message: `port ${tcp.port} not found` });
  const host = tcp.host || target.podIP;
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (outcome: ProbeOutcome) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.on('connect', () => done({ ok: true, message: 'connected' }));
    socket.on('timeout', () =>
      done({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` }),
    );
    socket.on('error', (err) => done({ ok: false, message: netError(err, host, port) }));
  });
}

/** What Go's dialer says for each failure a probe meets often: a probe's message as kubelet's. */
const DIAL_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connect: connection refused',
  EHOSTUNREACH: 'connect: no route to host',
  ENETUNREACH: 'connect: network is unreachable',
  ETIMEDOUT: 'i/o timeout',
};

/**
 * A connection's failure in kubelet's words (`dial tcp 10.42.0.7:8080: connect: connection
 * refused`), so that an Unhealthy Event reads as it would on Kubernetes; others as Node has it.
 */
function netError(err: NodeJS.ErrnoException, host: string, port: number): string {
  const said = err.code ? DIAL_ERRORS[err.code] : undefined;
  if (said) return `dial tcp ${host}:${port}: ${said}`;
  if (err.code === 'ECONNRESET') return 'read: connection reset by peer';
  return err.message;
}

/** Counts consecutive outcomes and says when the result flips, as thresholds define. */
export class ProbeState {
  result: boolean | undefined;
  private successes = 0;
  private failures = 0;

  constructor(private readonly spec: ProbeSpec) {}

  /** Records an outcome; returns true when the result changed. */
  record(ok: boolean): boolean {
    if (ok) {
      this.successes++;
      this.failures = 0;
    } else {
      this.failures++;
      this.successes = 0;
    }
    const before = this.result;
    if (ok && this.successes >= Math.max(1, this.spec.successThreshold ?? 1)) this.result = true;
    if (!ok && this.failures >= Math.max(1, this.spec.failureThreshold ?? 3)) this.result = false;
    return before !== this.result;
  }
}

export interface ProberHooks {
  /** A result changed: the pod's status should be recomputed. */
  changed(pod: Pod): void;
}

interface Worker {
  kind: ProbeKind;
  state: ProbeState;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

/** Runs the probe workers of every container instance on this node. */
export class Prober {
  /** Workers by container id. */
  private readonly workers = new Map<string, Worker[]>();
  private readonly owners = new Map<string, string>();
  /**
   * Containers being killed for a failed liveness or startup probe, with their pod's uid.
   * They are probed no more while they stop (through their grace period), as kubelet holds
   * a worker until it sees a new container: probing again would kill, and record the
   * Killing and Unhealthy Events, over and over.
   */
  private readonly killed = new Map<string, string>();

  constructor(
    private readonly runtime: RuntimeService,
    private readonly events: EventRecorder,
    private readonly log: Logger,
    private readonly hooks: ProberHooks,
    /** Hides what a message about the pod must not show (its Secrets' values). */
    private readonly hide: (pod: Pod, text: string) => string = (_pod, text) => text,
    /**
     * Stops a container that failed its liveness or startup probe within `grace` seconds;
     * the pod worker's runs the container's preStop hook first, as kubelet does for any
     * kill. Without one, the runtime stops it directly.
     */
    private readonly stopContainer: (
      pod: Pod,
      target: ProbeTarget,
      grace: number,
    ) => Promise<void> = (_pod, target, grace) =>
      this.runtime.stopContainer(target.containerId, grace),
  ) {}

  /** Whether a readiness probe has passed; undefined when the container has none. */
  ready(containerId: string): boolean | undefined {
    return this.result(containerId, 'readiness');
  }

  /** Whether a startup probe has passed; undefined when the container has none. */
  started(containerId: string): boolean | undefined {
    return this.result(containerId, 'startup');
  }

  private result(containerId: string, kind: ProbeKind): boolean | undefined {
    // A container stopping for a failed probe is neither ready nor started, whatever it
    // declares: its workers are gone, and "no probe" would read as ready.
    if (this.killed.has(containerId)) return false;
    const worker = this.workers.get(containerId)?.find((w) => w.kind === kind);
    if (!worker) return undefined;
    return worker.state.result ?? false;
  }

  /**
   * Starts workers for the pod's running containers that declare probes, and stops the
   * workers of instances that are no longer running. Safe to call on every sync.
   */
  sync(pod: Pod, podIP: string | undefined, containers: ContainerStatus[]): void {
    const running = new Set<string>();
    for (const c of containers) {
      const spec = pod.spec.containers.find((s) => s.name === c.name);
      if (!spec || c.state !== 'running' || !podIP) continue;
      running.add(c.id);
      if (!this.workers.has(c.id) && !this.killed.has(c.id)) this.start(pod, spec, c.id, podIP);
    }
    for (const [id, uid] of this.owners) {
      if (uid === pod.metadata.uid && !running.has(id)) this.stop(id);
    }
    for (const [id, uid] of this.killed) {
      if (uid === pod.metadata.uid && !running.has(id)) this.killed.delete(id);
    }
  }

  /** Stops every worker; the agent calls it when it stops. */
  stopAll(): void {
    for (const id of [...this.workers.keys()]) this.stop(id);
    this.killed.clear();
  }

  /** Stops every worker of a pod (it is being removed). */
  forget(podUid: string): void {
    for (const [id, uid] of this.owners) if (uid === podUid) this.stop(id);
    for (const [id, uid] of this.killed) if (uid === podUid) this.killed.delete(id);
  }

  private stop(containerId: string): void {
    for (const w of this.workers.get(containerId) ?? []) {
      w.stopped = true;
      if (w.timer) clearTimeout(w.timer);
    }
    this.workers.delete(containerId);
    this.owners.delete(containerId);
  }

  private start(pod: Pod, container: Container, containerId: string, podIP: string): void {
    const workers: Worker[] = [];
    for (const kind of KINDS) {
      const spec = probeOf(container, kind);
      if (!spec) continue;
      const worker: Worker = { kind, state: new ProbeState(spec), stopped: false };
      workers.push(worker);
      const target = { containerId, podIP, container };
      worker.timer = setTimeout(
        () => void this.tick(pod, worker, spec, target),
        (spec.initialDelaySeconds ?? 0) * 1000,
      );
    }
    if (workers.length === 0) return;
    this.workers.set(containerId, workers);
    this.owners.set(containerId, pod.metadata.uid!);
  }

  private async tick(
    pod: Pod,
    worker: Worker,
    spec: ProbeSpec,
    target: ProbeTarget,
  ): Promise<void> {
    if (worker.stopped) return;
    const startup = this.started(target.containerId);
    if (worker.kind !== 'startup' && startup === false)
      return this.schedule(pod, worker, spec, target);
    const outcome = await runProbe(spec, target, this.runtime);
    if (worker.stopped) return;
    if (!outcome.ok) {
      const what = worker.kind[0].toUpperCase() + worker.kind.slice(1);
      this.events.warning(
        pod,
        'Unhealthy',
        // An exec probe's output may carry a Secret the container has in its environment.
        `${what} probe failed: ${this.hide(pod, outcome.message)}`.slice(0, 1024),
      );
    }
    if (worker.state.record(outcome.ok)) {
      this.log.info(
        {
          pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
          container: target.container.name,
          probe: worker.kind,
          result: worker.state.result,
        },
        'probe result changed',
      );
      this.hooks.changed(pod);
      if (worker.state.result === false && worker.kind !== 'readiness') {
        await this.kill(pod, target, spec, worker.kind);
        return;
      }
      // A startup probe that passed has done its work; the other probes take over.
      if (worker.kind === 'startup' && worker.state.result) return;
    }
    this.schedule(pod, worker, spec, target);
  }

  private schedule(pod: Pod, worker: Worker, spec: ProbeSpec, target: ProbeTarget): void {
    if (worker.stopped) return;
    worker.timer = setTimeout(
      () => void this.tick(pod, worker, spec, target),
      Math.max(1, spec.periodSeconds ?? 10) * 1000,
    );
  }

  private async kill(
    pod: Pod,
    target: ProbeTarget,
    spec: ProbeSpec,
    kind: ProbeKind,
  ): Promise<void> {
    const name = target.container.name;
    this.events.normal(pod, 'Killing', `Container ${name} failed ${kind} probe, will be restarted`);
    const grace =
      spec.terminationGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    this.stop(target.containerId);
    this.killed.set(target.containerId, pod.metadata.uid!);
    try {
      await this.stopContainer(pod, target, grace);
    } catch (err) {
      this.log.warn(
        { container: target.containerId, err: (err as Error).message },
        'could not stop unhealthy container',
      );
    }
    this.hooks.changed(pod);
  }
}
