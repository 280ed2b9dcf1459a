import type { ResourceType } from '../../api/resources.js';
import type { KObject } from '../../api/types.js';

/**
 * Admission: plugins that see every object the registry is about to write, after
 * defaulting and validation and before the store. A plugin may change the object
 * (mutating, e.g. resolving a pod's priority) or refuse it by throwing an ApiError
 * (validating, e.g. a second default PriorityClass). Plugins run in the chain's order;
 * the first refusal ends the request. Each plugin is a file of its own in this folder.
 */

export interface AdmissionRequest {
  operation: 'CREATE' | 'UPDATE';
  rt: ResourceType;
  /** The object to be written; mutating plugins change it in place. */
  object: KObject;
  /** The current object, on UPDATE. */
  old?: KObject;
}

/** Read access to stored objects, for plugins that decide from other objects. */
export interface AdmissionReader {
  get(rt: ResourceType, namespace: string | undefined, name: string): Promise<KObject | undefined>;
  list(rt: ResourceType): Promise<KObject[]>;
}

export interface AdmissionPlugin {
  readonly name: string;
  /** Whether the plugin wants to see this request at all; cheap, called for every write. */
  handles(req: AdmissionRequest): boolean;
  /** Changes `req.object`, or throws an ApiError to refuse the request. */
  admit(req: AdmissionRequest, reader: AdmissionReader): Promise<void>;
}

/** Runs the plugins in order. */
export class AdmissionChain {
  constructor(private readonly plugins: AdmissionPlugin[]) {}

  async admit(req: AdmissionRequest, reader: AdmissionReader): Promise<void> {
    for (const plugin of this.plugins) {
      if (plugin.handles(req)) await plugin.admit(req, reader);
    }
  }
}
