import { test } from 'node:test';
import assert from 'node:assert/strict';

import { hostsFile } from './etc-files.js';

test("a pod's hosts file: kubelet's layout, its names, then its hostAliases", () => {
  assert.equal(
    hostsFile(
      {
        hostname: 'web-0',
        fqdn: 'web-0.web.shop.svc.cluster.local',
        hostAliases: [
          { ip: '10.1.2.3', hostnames: ['db', 'db.local'] },
          { ip: '10.1.2.4', hostnames: [] },
        ],
      },
      '10.42.0.7',
    ),
    [
      '# Kubernetes-managed hosts file.',
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'fe00::0\tip6-mcastprefix',
      'fe00::1\tip6-allnodes',
      'fe00::2\tip6-allrouters',
      '10.42.0.7\tweb-0.web.shop.svc.cluster.local\tweb-0',
      '',
      '# Entries added by HostAliases.',
      '10.1.2.3\tdb\tdb.local',
      '',
    ].join('\n'),
  );
  // Before the address is known: no line for the pod, nor for aliases it has none of.
  assert.doesNotMatch(hostsFile({ hostname: 'p' }), /\tp\n|HostAliases/);
});
