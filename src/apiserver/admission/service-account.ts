import { ApiError } from '../../api/errors.js';
import { byGroupResource } from '../../api/resources.js';
import { DEFAULT_SERVICE_ACCOUNT, type ServiceAccount } from '../../api/service-account.js';
import type { AdmissionPlugin, AdmissionReader, AdmissionRequest } from './admission.js';

/**
 * ServiceAccount: on pod creation, as Kubernetes' plugin of that name, gives a pod that
 * names no account the `default` one (spec.serviceAccountName, and the older
 * spec.serviceAccount kept equal to it), and the account's imagePullSecrets when the pod
 * has none of its own. A pod naming an account that does not exist is refused. The
 * `default` account may not exist yet in a namespace made a moment ago (its controller
 * makes it): such a pod is let through, as it is given nothing from the account anyway.
 * No token is mounted: flyCes issues none.
 */
export const serviceAccountAdmission = {
  name: 'ServiceAccount',

  handles(req: AdmissionRequest): boolean {
    return req.rt.kind === 'Pod' && req.operation === 'CREATE';
  },

  async admit(req: AdmissionRequest, reader: AdmissionReader): Promise<void> {
    const pod = req.object;
    const spec = pod.spec ?? {};
    const named = [spec.serviceAccountName, spec.serviceAccount].find(
      (v): v is string => typeof v === 'string' && v !== '',
    );
    const account = named ?? DEFAULT_SERVICE_ACCOUNT;
    const namespace = pod.metadata.namespace ?? 'default';
    spec.serviceAccountName = account;
    spec.serviceAccount = account;
    const sa = (await reader.get(serviceAccounts(), namespace, account)) as
      ServiceAccount | undefined;
    if (!sa) {
      if (account === DEFAULT_SERVICE_ACCOUNT) return;
      const name = pod.metadata.name ?? '';
      throw new ApiError(
        'Forbidden',
        `pods "${name}" is forbidden: error looking up service account ` +
          `${namespace}/${account}: serviceaccount "${account}" not found`,
        { name, kind: 'pods' },
      );
    }
    const own = spec.imagePullSecrets as unknown[] | undefined;
    if ((own?.length ?? 0) === 0 && (sa.imagePullSecrets?.length ?? 0) > 0) {
      spec.imagePullSecrets = sa.imagePullSecrets!.map((ref) => ({ name: ref.name }));
    }
  },
} satisfies AdmissionPlugin;

const serviceAccounts = () => byGroupResource.get('/serviceaccounts')!;
