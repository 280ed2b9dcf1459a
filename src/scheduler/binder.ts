import { isReason, type KubeClient } from '../client/rest.js';
import type { Pod } from '../api/types.js';
import { Code, SUCCESS, type BindPlugin, type Status } from './framework/interface.js';

/**
 * The default binder: POSTs a Binding to the pod's binding subresource, which sets
 * spec.nodeName exactly once. The binding names the pod's uid, so a pod deleted and
 * re-created under the same name is never bound by a decision made for the old one.
 * A refusal because the pod is gone or already bound is Unschedulable-and-unresolvable
 * (do not retry here; the pod's next version decides); other errors are Error (retry).
 */
export function defaultBinder(client: KubeClient): BindPlugin {
  return {
    name: 'DefaultBinder',
    async bind(_state, pod: Pod, nodeName: string): Promise<Status> {
      const { namespace, name, uid } = pod.metadata;
      try {
        await client.request('POST', `/api/v1/namespaces/${namespace}/pods/${name}/binding`, {
          body: {
            apiVersion: 'v1',
            kind: 'Binding',
            metadata: { name, namespace, uid },
            target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
          },
        });
        return SUCCESS;
      } catch (err) {
        const reason = (err as Error).message ?? String(err);
        if (isReason(err, 'NotFound') || isReason(err, 'Conflict')) {
          return { code: Code.UnschedulableAndUnresolvable, reasons: [reason] };
        }
        return { code: Code.Error, reasons: [reason] };
      }
    },
  };
}
