import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, waitFor } from './helpers/cluster.js';

/**
 * A pod whose activeDeadlineSeconds passes while its init container runs, under `flyces up`
 * with real containers: it ends as kubelet ends it, Failed with DeadlineExceeded, its init
 * container stopped, and its app container, which never ran, waiting with PodInitializing.
 */

describe('a deadline during init containers', { timeout: 180_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.202.0/24',
    bridge: 'flyceshB0',
    port: 17500,
    agentPort: 17501,
  });

  before(async () => {
    await cluster.start();
    await cluster.importWebImage();
  });
  after(async () => {
    await cluster.destroy();
  });

  test('the pod fails with DeadlineExceeded; its app container waits with PodInitializing', async () => {
    const image = { image: 'localhost/flyces-web:1', imagePullPolicy: 'Never' };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'slow-init' },
      spec: {
        activeDeadlineSeconds: 3,
        terminationGracePeriodSeconds: 1,
        initContainers: [{ name: 'wait', ...image, command: ['sleep', '3600'] }],
        containers: [{ name: 'app', ...image, command: ['sleep', '3600'] }],
      },
    };
    const file = join(cluster.dataDir, 'slow-init.json');
    writeFileSync(file, JSON.stringify(pod));
    await cluster.kubectl('apply', '-f', file);
    let s: any;
    await waitFor('the pod to fail', 60_000, async () => {
      s = JSON.parse(await cluster.kubectl('get', 'pod', 'slow-init', '-o', 'json')).status;
      return s?.phase === 'Failed';
    });
    assert.equal(s.reason, 'DeadlineExceeded');
    assert.equal(s.message, 'Pod was active on the node longer than the specified deadline');
    assert.ok(s.initContainerStatuses[0].state.terminated, 'the init container was stopped');
    assert.deepEqual(s.containerStatuses[0].state, { waiting: { reason: 'PodInitializing' } });
    const initialized = s.conditions.find((c: any) => c.type === 'Initialized');
    assert.equal(initialized.status, 'False');
    await cluster.kubectl('delete', 'pod', 'slow-init');
  });
});
