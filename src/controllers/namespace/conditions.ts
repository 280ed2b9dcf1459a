import { timestamp, type Condition } from '../../api/types.js';

/**
 * The conditions a terminating namespace reports, as `kubectl describe namespace` shows
 * them: what is left in it, which finalizers hold that content, and whether deleting
 * failed. Pure, so the controller writes them only when they change.
 */

/** What one pass over a terminating namespace found. */
export interface ContentReport {
  /** Objects still present, by resource (`pods`, `deployments.apps`). */
  remaining: Map<string, number>;
  /** Objects held by each finalizer. */
  finalizers: Map<string, number>;
  /** Delete calls that failed, as messages. */
  failures: string[];
}

/** Condition types and reasons of namespace deletion, as Kubernetes names them. */
export const NamespaceConditions = {
  discovery: ['NamespaceDeletionDiscoveryFailure', 'ResourcesDiscovered'],
  groupVersions: ['NamespaceDeletionGroupVersionParsingFailure', 'ParsedGroupVersions'],
  content: ['NamespaceDeletionContentFailure', 'ContentDeleted', 'ContentDeletionFailed'],
  remaining: ['NamespaceContentRemaining', 'ContentRemoved', 'SomeResourcesRemain'],
  finalizers: ['NamespaceFinalizersRemaining', 'ContentHasNoFinalizers', 'SomeFinalizersRemain'],
} as const;

function describe(counts: Map<string, number>, unit: string): string {
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, n]) => `${name}: ${n} ${unit}${n === 1 ? '' : 's'}`)
    .join(', ');
}

/** The deletion conditions for `report`, keeping timestamps of those that did not change. */
export function namespaceConditions(
  report: ContentReport,
  previous: Condition[],
  now: Date,
): Condition[] {
  const { discovery, groupVersions, content, remaining, finalizers } = NamespaceConditions;
  const wanted: Omit<Condition, 'lastTransitionTime'>[] = [
    // Types come from the served types table, so discovery and parsing cannot fail.
    { type: discovery[0], status: 'False', reason: discovery[1], message: 'All types known' },
    {
      type: groupVersions[0],
      status: 'False',
      reason: groupVersions[1],
      message: 'All types known',
    },
    report.failures.length > 0
      ? {
          type: content[0],
          status: 'True',
          reason: content[2],
          message: `Failed to delete: ${report.failures.join('; ')}`,
        }
      : {
          type: content[0],
          status: 'False',
          reason: content[1],
          message: 'Every object was asked to go; some may still be finalizing',
        },
    report.remaining.size > 0
      ? {
          type: remaining[0],
          status: 'True',
          reason: remaining[2],
          message: `Objects left: ${describe(report.remaining, 'object')}`,
        }
      : { type: remaining[0], status: 'False', reason: remaining[1], message: 'No objects left' },
    report.finalizers.size > 0
      ? {
          type: finalizers[0],
          status: 'True',
          reason: finalizers[2],
          message: `Finalizers holding objects: ${describe(report.finalizers, 'object')}`,
        }
      : {
          type: finalizers[0],
          status: 'False',
          reason: finalizers[1],
          message: 'No finalizer holds any object',
        },
  ];
  const at = timestamp(now);
  return wanted.map((next) => {
    const prev = previous.find((c) => c.type === next.type);
    const same =
      prev?.status === next.status && prev.reason === next.reason && prev.message === next.message;
    if (prev && same) return prev;
    const lastTransitionTime = prev?.status === next.status ? prev.lastTransitionTime : at;
    return { ...next, lastTransitionTime };
  });
}
