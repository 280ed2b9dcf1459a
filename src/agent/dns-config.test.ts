import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../api/types.js';
import { podResolvConf, type DnsSettings } from './dns-config.js';

const HOST = 'nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n';

function pod(spec: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'shop' },
    spec: { containers: [{ name: 'c', image: 'i' }], ...spec },
  };
}

test('resolv.conf follows the pod’s dnsPolicy', () => {
  const cluster: DnsSettings = {
    clusterDNS: ['10.42.0.1'],
    clusterDomain: 'cluster.local',
    hostResolvConf: () => HOST,
  };
  const none: DnsSettings = { ...cluster, clusterDNS: [] };
  const clusterFile =
    'nameserver 10.42.0.1\n' +
    'search shop.svc.cluster.local svc.cluster.local cluster.local\n' +
    'options ndots:5\n';
  const cases: { name: string; pod: Pod; dns: DnsSettings; want: string }[] = [
    { name: 'ClusterFirst by default', pod: pod(), dns: cluster, want: clusterFile },
    {
      name: 'host network falls back to the node',
      pod: pod({ hostNetwork: true }),
      dns: cluster,
      want: HOST,
    },
    {
      name: 'ClusterFirstWithHostNet keeps the cluster DNS',
      pod: pod({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }),
      dns: cluster,
      want: clusterFile,
    },
    { name: 'Default is the node’s', pod: pod({ dnsPolicy: 'Default' }), dns: cluster, want: HOST },
    { name: 'no cluster DNS: nothing', pod: pod(), dns: none, want: '' },
    {
      name: 'None takes dnsConfig only',
      pod: pod({
        dnsPolicy: 'None',
        dnsConfig: {
          nameservers: ['10.0.0.10'],
          searches: ['a.example'],
          options: [{ name: 'ndots', value: '2' }, { name: 'rotate' }],
        },
      }),
      dns: cluster,
      want: 'nameserver 10.0.0.10\nsearch a.example\noptions ndots:2 rotate\n',
    },
    {
      name: 'dnsConfig merges into ClusterFirst; options override by name',
      pod: pod({
        dnsConfig: {
          nameservers: ['10.42.0.1', '10.0.0.10'],
          searches: ['extra.example'],
          options: [{ name: 'ndots', value: '1' }],
        },
      }),
      dns: cluster,
      want:
        'nameserver 10.42.0.1\nnameserver 10.0.0.10\n' +
        'search shop.svc.cluster.local svc.cluster.local cluster.local extra.example\n' +
        'options ndots:1\n',
    },
  ];
  for (const c of cases) assert.equal(podResolvConf(c.pod, c.dns), c.want, c.name);
});
