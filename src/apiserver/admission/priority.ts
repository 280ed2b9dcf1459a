import { ApiError } from '../../api/errors.js';
import type { PriorityClass } from '../../api/priority-class.js';
import { byGroupResource } from '../../api/resources.js';
import type { AdmissionPlugin, AdmissionReader, AdmissionRequest } from './admission.js';

/**
 * Priority: on pod creation, resolves spec.priorityClassName into spec.priority and
 * spec.preemptionPolicy. A pod without a class gets the global default class, if one
 * exists, or priority 0. A class that does not exist, or a spec.priority that disagrees
 * with the class, refuses the pod. On PriorityClass writes, refuses a second class with
 * globalDefault set.
 */
export const priorityAdmission = {
  name: 'Priority',

  handles(req: AdmissionRequest): boolean {
    if (req.rt.kind === 'PriorityClass') return req.object.globalDefault === true;
    return req.rt.kind === 'Pod' && req.operation === 'CREATE';
  },

  async admit(req: AdmissionRequest, reader: AdmissionReader): Promise<void> {
    if (req.rt.kind === 'PriorityClass') return onlyOneGlobalDefault(req, reader);
    return resolvePodPriority(req, reader);
  },
} satisfies AdmissionPlugin;

const priorityClasses = () => byGroupResource.get('scheduling.k8s.io/priorityclasses')!;

async function resolvePodPriority(req: AdmissionRequest, reader: AdmissionReader): Promise<void> {
  const pod = req.object;
  const name = pod.metadata.name ?? '';
  const className: unknown = pod.spec?.priorityClassName;
  let pc: PriorityClass | undefined;
  if (typeof className === 'string' && className !== '') {
    pc = (await reader.get(priorityClasses(), undefined, className)) as PriorityClass | undefined;
    if (!pc) {
      throw forbidden(
        name,
        `spec.priorityClassName: Not found: "${className}": no PriorityClass with this name exists`,
      );
    }
  } else {
    const all = (await reader.list(priorityClasses())) as PriorityClass[];
    pc = all.find((c) => c.globalDefault === true);
  }
  const priority = pc?.value ?? 0;
  const given: unknown = pod.spec.priority;
  if (given !== undefined && given !== null && given !== priority) {
    throw forbidden(
      name,
      `spec.priority: Forbidden: the integer value of priority (${String(given)}) must not be ` +
        `set by the client; the server computed ${priority} from ` +
        (pc ? `PriorityClass "${pc.metadata.name}"` : 'the absence of a PriorityClass'),
    );
  }
  pod.spec.priority = priority;
  if (pc && !className) pod.spec.priorityClassName = pc.metadata.name;
  pod.spec.preemptionPolicy ??= pc?.preemptionPolicy ?? 'PreemptLowerPriority';
}

async function onlyOneGlobalDefault(req: AdmissionRequest, reader: AdmissionReader): Promise<void> {
  const name = req.object.metadata.name;
  const all = (await reader.list(req.rt)) as PriorityClass[];
  const other = all.find((c) => c.globalDefault === true && c.metadata.name !== name);
  if (!other) return;
  throw new ApiError(
    'Forbidden',
    `priorityclasses.scheduling.k8s.io "${name}" is forbidden: globalDefault: PriorityClass ` +
      `"${other.metadata.name}" is already marked as the global default; only one may be`,
    { name, group: 'scheduling.k8s.io', kind: 'priorityclasses' },
  );
}

function forbidden(podName: string, message: string): ApiError {
  return new ApiError('Forbidden', `pods "${podName}" is forbidden: ${message}`, {
    name: podName,
    kind: 'pods',
  });
}
