import { byGroupResource } from '../api/resources.js';
import { objectKey, type Pod } from '../api/types.js';
import type { EventRecorder } from '../client/events.js';
import { isReason, type KubeClient } from '../client/rest.js';
import type { Logger } from '../log.js';
import type { Framework } from './framework/framework.js';
import {
  Code,
  SUCCESS,
  unschedulable,
  type CycleState,
  type PostFilterPlugin,
  type PostFilterResult,
} from './framework/interface.js';
import type { NodeInfo } from './framework/nodeinfo.js';
import { podPriority } from './queue.js';

/**
 * Default preemption, a post-filter: when a pod fits nowhere, find the nodes where removing
 * pods of lower priority would make it fit, keep as many of those pods as still allows it
 * (reprieving the most important first), pick the node where the eviction hurts least, and
 * delete its victims gracefully. The preemptor is nominated to that node and scheduled
 * like any pod once the victims are gone.
 *
 * Simplified against Kubernetes: PodDisruptionBudgets are not consulted (flyCes has none
 * yet), victims get no DisruptionTarget condition, and pods already terminating are never
 * chosen as victims but still count on their node until they are gone.
 */

/** A node where preemption would make the pod fit, and the pods it would evict there. */
export interface Candidate {
  node: string;
  victims: Pod[];
}

/**
 * The fewest pods, least important last, whose removal from `node` lets `pod` pass the
 * filters; undefined when even removing every lower-priority pod is not enough.
 */
export function selectVictims(
  framework: Framework,
  state: CycleState,
  pod: Pod,
  node: NodeInfo,
): Pod[] | undefined {
  const priority = podPriority(pod);
  const potential: Pod[] = [];
  for (const { pod: p } of node.pods.values()) {
    if (podPriority(p) < priority && !p.metadata.deletionTimestamp) potential.push(p);
  }
  if (potential.length === 0) return undefined;
  const trial = node.clone();
  for (const p of potential) trial.removePod(objectKey(p));
  if (framework.filterNode(state, pod, trial)) return undefined;

  potential.sort(moreImportantFirst);
  const victims: Pod[] = [];
  for (const p of potential) {
    trial.addPod(p);
    if (!framework.filterNode(state, pod, trial)) continue;
    trial.removePod(objectKey(p));
    victims.push(p);
  }
  return victims;
}

/** Higher priority first; between equals, the one running longer first. */
function moreImportantFirst(a: Pod, b: Pod): number {
  const byPriority = podPriority(b) - podPriority(a);
  return byPriority !== 0 ? byPriority : startTime(a) - startTime(b);
}

function startTime(pod: Pod): number {
  const text = pod.status?.startTime ?? pod.metadata.creationTimestamp;
  return text ? Date.parse(text) : 0;
}

const PRIORITY_OFFSET = 2 ** 31;

/**
 * The candidate Kubernetes would pick: the lowest priority among its most important victim,
 * then the smallest sum of victim priorities, then the fewest victims, then the node whose
 * most important victims started last; the first candidate among equals.
 */
export function pickCandidate(candidates: Candidate[]): Candidate | undefined {
  const keys = candidates.map((c) => {
    const top = Math.max(...c.victims.map(podPriority));
    const sum = c.victims.reduce((s, v) => s + podPriority(v) + PRIORITY_OFFSET, 0);
    const earliestTop = Math.min(...c.victims.filter((v) => podPriority(v) === top).map(startTime));
    return [top, sum, c.victims.length, -earliestTop];
  });
  let best = -1;
  for (let i = 0; i < candidates.length; i++) {
    if (best < 0 || lexicallyLess(keys[i], keys[best])) best = i;
  }
  return best < 0 ? undefined : candidates[best];
}

function lexicallyLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

export interface PreemptionDeps {
  framework: Framework;
  client: KubeClient;
  events: EventRecorder;
  log: Logger;
}

export class DefaultPreemption implements PostFilterPlugin {
  readonly name = 'DefaultPreemption';

  constructor(private readonly deps: PreemptionDeps) {}

  async postFilter(state: CycleState, pod: Pod, nodes: NodeInfo[]): Promise<PostFilterResult> {
    if (pod.spec.preemptionPolicy === 'Never') {
      return { status: unschedulable('not eligible due to preemptionPolicy=Never.') };
    }
    if (waitingForVictims(pod, nodes)) {
      return { status: unschedulable('waiting for preempted pods to terminate.') };
    }
    const candidates: Candidate[] = [];
    for (const node of nodes) {
      const failure = this.deps.framework.filterNode(state, pod, node);
      if (!failure || failure.code !== Code.Unschedulable) continue;
      const victims = selectVictims(this.deps.framework, state, pod, node);
      if (victims && victims.length > 0) candidates.push({ node: node.name, victims });
    }
    const chosen = pickCandidate(candidates);
    if (!chosen) {
      return { status: unschedulable('No preemption victims found for incoming pod.') };
    }
    await Promise.all(chosen.victims.map((v) => this.evict(v, pod, chosen.node)));
    return { nominatedNodeName: chosen.node, status: SUCCESS };
  }

  /** Deletes a victim with its own grace period and tells its owner why. */
  private async evict(victim: Pod, preemptor: Pod, nodeName: string): Promise<void> {
    const key = objectKey(victim);
    const by = objectKey(preemptor);
    try {
      await this.deps.client.delete(
        byGroupResource.get('/pods')!,
        victim.metadata.namespace,
        victim.metadata.name!,
        { preconditions: { uid: victim.metadata.uid } },
      );
    } catch (err) {
      if (isReason(err, 'NotFound') || isReason(err, 'Conflict')) return;
      throw err;
    }
    this.deps.log.info({ pod: key, preemptor: by, node: nodeName }, 'preempted pod');
    this.deps.events.normal(victim, 'Preempted', `Preempted by pod ${by} on node ${nodeName}`);
  }
}

/**
 * A pod that already preempted and whose nominated node still has lower-priority pods
 * terminating waits for them instead of choosing more victims.
 */
function waitingForVictims(pod: Pod, nodes: NodeInfo[]): boolean {
  const nominated = pod.status?.nominatedNodeName;
  if (!nominated) return false;
  const node = nodes.find((n) => n.name === nominated);
  if (!node) return false;
  const priority = podPriority(pod);
  for (const { pod: p } of node.pods.values()) {
    if (p.metadata.deletionTimestamp && podPriority(p) < priority) return true;
  }
  return false;
}
