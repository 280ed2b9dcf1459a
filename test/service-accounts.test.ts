import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { byGroupResource } from '../src/api/resources.js';
import type { ServiceAccount } from '../src/api/service-account.js';
import type { KObject, Pod } from '../src/api/types.js';
import { isReason } from '../src/client/rest.js';
import { kubectlOk, NAMESPACES, PODS, startCluster, waitFor } from './helpers/workload.js';

/**
 * ServiceAccounts against a real API server, the serviceaccount controller and the real
 * kubectl: a `default` account in every namespace, pods given theirs at admission with its
 * imagePullSecrets, a pod naming one that is not there refused as Kubernetes refuses it.
 */

const ACCOUNTS = byGroupResource.get('/serviceaccounts')!;

const pod = (name: string, spec: Partial<Pod['spec']> = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: { containers: [{ name: 'c', image: 'busybox:1.36' }], ...spec },
});

const account = async (
  client: Awaited<ReturnType<typeof startCluster>>['client'],
  ns: string,
  name: string,
) => {
  try {
    return await client.get<ServiceAccount>(ACCOUNTS, ns, name);
  } catch (err) {
    if (isReason(err, 'NotFound')) return undefined;
    throw err;
  }
};

test('every namespace has a default ServiceAccount, made again if deleted', async (t) => {
  const { client } = await startCluster(t, { controllers: ['serviceaccount'] });
  await waitFor('default/default', async () => !!(await account(client, 'default', 'default')));
  await client.create(NAMESPACES, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'team' },
  } as KObject);
  await waitFor('team/default', async () => !!(await account(client, 'team', 'default')));
  await client.delete(ACCOUNTS, 'team', 'default');
  await waitFor('team/default again', async () => !!(await account(client, 'team', 'default')));
});

test('pods get their ServiceAccount and its pull secrets; a missing one is refused', async (t) => {
  const c = await startCluster(t, { controllers: ['serviceaccount'] });
  const { client } = c;
  // kubectl sends this one as protobuf.
  await kubectlOk(c, ['create', 'serviceaccount', 'builder'], /serviceaccount\/builder created/);
  const file = join(c.api.dir, 'puller.yaml');
  writeFileSync(
    file,
    'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: puller}\n' +
      'imagePullSecrets: [{name: regcred}]\n',
  );
  await kubectlOk(c, ['apply', '-f', file]);
  await kubectlOk(c, ['get', 'sa'], /NAME\s+SECRETS\s+AGE\n(.*\n)*puller\s+0\s+\d+s/);

  const plain = await client.create<Pod>(PODS, pod('plain'));
  assert.equal(plain.spec.serviceAccountName, 'default');
  assert.equal(plain.spec.serviceAccount, 'default');
  assert.equal(plain.spec.imagePullSecrets, undefined);

  const pulls = await client.create<Pod>(PODS, pod('pulls', { serviceAccountName: 'puller' }));
  assert.deepEqual(pulls.spec.imagePullSecrets, [{ name: 'regcred' }]);
  // A pod's own pull secrets stay as they are.
  const own = await client.create<Pod>(
    PODS,
    pod('own', { serviceAccountName: 'puller', imagePullSecrets: [{ name: 'mine' }] }),
  );
  assert.deepEqual(own.spec.imagePullSecrets, [{ name: 'mine' }]);
  // The older field alone names the account too.
  const old = await client.create<Pod>(PODS, pod('old', { serviceAccount: 'builder' }));
  assert.equal(old.spec.serviceAccountName, 'builder');

  await assert.rejects(client.create(PODS, pod('ghostly', { serviceAccountName: 'ghost' })), {
    message:
      'pods "ghostly" is forbidden: error looking up service account default/ghost: ' +
      'serviceaccount "ghost" not found',
  });

  await assert.rejects(
    client.create(ACCOUNTS, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'broken', namespace: 'default' },
      imagePullSecrets: [{ name: 'Not_A_Name' }, {}],
    } as KObject),
    (err: Error) =>
      /imagePullSecrets\[0\]\.name: Invalid value: "Not_A_Name"/.test(err.message) &&
      /imagePullSecrets\[1\]\.name: Required value/.test(err.message),
  );
});
