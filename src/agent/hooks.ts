import type { Container, Pod } from '../api/types.js';
import type { RuntimeService } from '../runtime/runtime.js';
import { runProbe, type ProbeOutcome, type ProbeSpec } from './probes.js';

/**
 * Container lifecycle hooks: postStart runs right after a container starts (the container
 * counts as started only once it returns), preStop runs before the stop signal, inside the
 * termination grace period. Handlers are exec, httpGet, tcpSocket (as for probes) and sleep.
 */

export type HookName = 'postStart' | 'preStop';

interface Handler extends ProbeSpec {
  sleep?: { seconds?: number };
}

export function hookOf(container: Container, name: HookName): Handler | undefined {
  const lifecycle = container.lifecycle as Record<string, unknown> | undefined;
  const handler = lifecycle?.[name];
  return handler && typeof handler === 'object' ? (handler as Handler) : undefined;
}

/** Runs a hook with a time limit; a hook the container does not declare succeeds at once. */
export async function runHook(
  container: Container,
  name: HookName,
  target: { containerId: string; podIP: string },
  runtime: RuntimeService,
  timeoutSeconds: number,
): Promise<ProbeOutcome> {
  const handler = hookOf(container, name);
  if (!handler) return { ok: true, message: 'no hook' };
  if (handler.sleep) {
    const ms = Math.min(Math.max(0, handler.sleep.seconds ?? 0), timeoutSeconds) * 1000;
    await new Promise((resolve) => setTimeout(resolve, ms));
    return { ok: true, message: 'slept' };
  }
  const spec = { ...handler, timeoutSeconds: Math.max(1, timeoutSeconds) };
  return runProbe(spec, { ...target, container }, runtime);
}

/** The hook's failure as kubelet words it in the pod's events. */
export function hookFailure(
  pod: Pod,
  container: Container,
  name: HookName,
  message: string,
): string {
  return (
    `${name === 'postStart' ? 'PostStartHook' : 'PreStopHook'} failed for container ` +
    `${container.name} in pod ${pod.metadata.namespace}/${pod.metadata.name}: ${message}`
  );
}
