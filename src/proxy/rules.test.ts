import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  buildRuleset,
  type HostPort,
  deleteScript,
  replaceScript,
  type RulesOptions,
} from './rules.js';
import type { EndpointSlice, Service, ServiceSpec, SliceEndpoint } from './types.js';

const opts: RulesOptions = { podCidr: '10.42.230.0/24', nodeAddresses: ['10.42.230.1'] };

function svc(name: string, spec: ServiceSpec, namespace = 'default'): Service {
  return { metadata: { name, namespace }, spec };
}

function slice(
  service: string,
  endpoints: SliceEndpoint[],
  ports: EndpointSlice['ports'],
  extra: Partial<EndpointSlice> = {},
): EndpointSlice {
  return {
    metadata: {
      name: `${service}-${Math.random().toString(36).slice(2, 7)}`,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': service },
    },
    addressType: 'IPv4',
    endpoints,
    ports,
    ...extra,
  };
}

/** The block of `text` that starts with the line `header` (through its closing brace). */
function block(text: string, header: string): string | undefined {
  const lines = text.split('\n');
  const start = lines.indexOf(header);
  if (start < 0) return undefined;
  const indent = header.length - header.trimStart().length;
  const end = lines.findIndex((l, i) => i > start && l === `${' '.repeat(indent)}}`);
  return lines.slice(start, end + 1).join('\n');
}

test('a ClusterIP Service with one endpoint: the whole table', () => {
  const r = buildRuleset(
    [svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] })],
    [slice('web', [{ addresses: ['10.42.230.3'] }], [{ port: 8080, protocol: 'TCP' }])],
    opts,
  );
  assert.equal(
    r.text,
    `table ip flyces {
  map service_ips {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = {
      10.96.0.10 . tcp . 80 : goto svc-default/web/tcp/80
    }
  }
  map no_endpoint_services {
    type ipv4_addr . inet_proto . inet_service : verdict
  }
  map service_nodeports {
    type inet_proto . inet_service : verdict
  }
  map no_endpoint_nodeports {
    type inet_proto . inet_service : verdict
  }
  set node_ips {
    type ipv4_addr
    elements = { 10.42.230.1 }
  }
  chain reject-service {
    meta l4proto tcp reject with tcp reset
    reject
  }
  chain reject-check {
    ip daddr . meta l4proto . th dport vmap @no_endpoint_services
    ip daddr @node_ips meta l4proto . th dport vmap @no_endpoint_nodeports
  }
  chain filter-prerouting {
    type filter hook prerouting priority -110; policy accept;
    ct state new jump reject-check
  }
  chain filter-output {
    type filter hook output priority -110; policy accept;
    ct state new jump reject-check
  }
  chain services {
    ip daddr . meta l4proto . th dport vmap @service_ips
    ip daddr @node_ips meta l4proto . th dport vmap @service_nodeports
  }
  chain nat-prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump hostports
    jump services
  }
  chain nat-output {
    type nat hook output priority -100; policy accept;
    jump hostports
    jump services
  }
  chain nat-postrouting {
    type nat hook postrouting priority 100; policy accept;
    meta mark & 0x00004000 == 0 return
    meta mark set meta mark ^ 0x00004000
    masquerade fully-random
  }
  chain hostports {
  }
  chain svc-default/web/tcp/80 {
    ip saddr 10.42.230.0/24 meta mark set meta mark | 0x00004000
    goto ep-default/web/tcp/80/10.42.230.3/8080
  }
  chain ep-default/web/tcp/80/10.42.230.3/8080 {
    meta l4proto tcp dnat to 10.42.230.3:8080
  }
}
`,
  );
  assert.deepEqual([r.routed, r.rejecting, r.skipped], [1, 0, []]);
});

interface Case {
  name: string;
  services: Service[];
  slices: EndpointSlice[];
  options?: Partial<RulesOptions>;
  /** Blocks (by header line) and their exact text; undefined means "must be absent". */
  blocks: Record<string, string | undefined>;
  routed?: number;
  rejecting?: number;
  skipped?: string[];
}

const web2 = [
  slice(
    'web',
    [
      { addresses: ['10.42.230.4'], conditions: { ready: true } },
      { addresses: ['10.42.230.3'], conditions: { ready: true } },
      { addresses: ['10.42.230.5'], conditions: { ready: false, serving: false } },
    ],
    [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ],
  ),
];

const cases: Case[] = [
  {
    name: 'two ready endpoints share a port at random with equal weights; unready left out',
    services: [svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] })],
    slices: web2,
    blocks: {
      '  chain svc-default/web/tcp/80 {': `  chain svc-default/web/tcp/80 {
    ip saddr 10.42.230.0/24 meta mark set meta mark | 0x00004000
    numgen random mod 2 vmap { 0 : goto ep-default/web/tcp/80/10.42.230.3/8080, \
1 : goto ep-default/web/tcp/80/10.42.230.4/8080 }
  }`,
      '  chain ep-default/web/tcp/80/10.42.230.5/8080 {': undefined,
    },
  },
  {
    name: 'each port and protocol gets its own chain and target port',
    services: [
      svc('web', {
        clusterIP: '10.96.0.10',
        ports: [
          { name: 'http', port: 80 },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ],
      }),
    ],
    slices: web2,
    blocks: {
      '  map service_ips {': `  map service_ips {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = {
      10.96.0.10 . tcp . 80 : goto svc-default/web/tcp/80,
      10.96.0.10 . udp . 53 : goto svc-default/web/udp/53
    }
  }`,
      '  chain ep-default/web/udp/53/10.42.230.4/5353 {': `  chain \
ep-default/web/udp/53/10.42.230.4/5353 {
    meta l4proto udp dnat to 10.42.230.4:5353
  }`,
    },
    routed: 2,
  },
  {
    name: 'no usable endpoint: the ClusterIP and the NodePort reject, no chains',
    services: [
      svc('empty', {
        type: 'NodePort',
        clusterIP: '10.96.0.11',
        ports: [{ port: 80, nodePort: 30081 }],
      }),
    ],
    slices: [
      slice(
        'empty',
        [{ addresses: ['10.42.230.9'], conditions: { ready: false } }],
        [{ port: 80 }],
      ),
    ],
    blocks: {
      '  map no_endpoint_services {': `  map no_endpoint_services {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = {
      10.96.0.11 . tcp . 80 : goto reject-service
    }
  }`,
      '  map no_endpoint_nodeports {': `  map no_endpoint_nodeports {
    type inet_proto . inet_service : verdict
    elements = {
      tcp . 30081 : goto reject-service
    }
  }`,
      '  chain svc-default/empty/tcp/80 {': undefined,
    },
    routed: 0,
    rejecting: 1,
  },
  {
    name: 'terminating but serving endpoints are used only when none is ready',
    services: [svc('t', { clusterIP: '10.96.0.12', ports: [{ port: 80 }] })],
    slices: [
      slice(
        't',
        [
          {
            addresses: ['10.42.230.6'],
            conditions: { ready: false, serving: true, terminating: true },
          },
          {
            addresses: ['10.42.230.7'],
            conditions: { ready: false, serving: false, terminating: true },
          },
        ],
        [{ port: 8080 }],
      ),
    ],
    blocks: {
      '  chain svc-default/t/tcp/80 {': `  chain svc-default/t/tcp/80 {
    ip saddr 10.42.230.0/24 meta mark set meta mark | 0x00004000
    goto ep-default/t/tcp/80/10.42.230.6/8080
  }`,
    },
  },
  {
    name: 'NodePort: marked for masquerade, then the Service chain; ClusterIP type has none',
    services: [
      svc('np', {
        type: 'NodePort',
        clusterIP: '10.96.0.13',
        ports: [{ port: 80, nodePort: 30080 }],
      }),
      svc('cip', { clusterIP: '10.96.0.14', ports: [{ port: 80, nodePort: 30099 }] }),
    ],
    slices: [
      slice('np', [{ addresses: ['10.42.230.3'] }], [{ port: 8080 }]),
      slice('cip', [{ addresses: ['10.42.230.3'] }], [{ port: 8080 }]),
    ],
    blocks: {
      '  map service_nodeports {': `  map service_nodeports {
    type inet_proto . inet_service : verdict
    elements = {
      tcp . 30080 : goto nodeport-default/np/tcp/80
    }
  }`,
      '  chain nodeport-default/np/tcp/80 {': `  chain nodeport-default/np/tcp/80 {
    meta mark set meta mark | 0x00004000
    goto svc-default/np/tcp/80
  }`,
    },
    routed: 2,
  },
  {
    name: 'without node addresses NodePorts match every local non-loopback address',
    services: [],
    slices: [],
    options: { nodeAddresses: [] },
    blocks: {
      '  set node_ips {': undefined,
      '  chain services {': `  chain services {
    ip daddr . meta l4proto . th dport vmap @service_ips
    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service_nodeports
  }`,
    },
    routed: 0,
  },
  {
    name: 'ClientIP affinity: a timed set per endpoint, checked before the random pick',
    services: [
      svc('aff', {
        clusterIP: '10.96.0.15',
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
        ports: [{ port: 80 }],
      }),
    ],
    slices: [slice('aff', [{ addresses: ['10.42.230.3'] }], [{ port: 8080 }])],
    blocks: {
      '  set affinity-default/aff/tcp/80/10.42.230.3/8080 {': `  set \
affinity-default/aff/tcp/80/10.42.230.3/8080 {
    type ipv4_addr
    flags dynamic,timeout
    timeout 60s
  }`,
      '  chain svc-default/aff/tcp/80 {': `  chain svc-default/aff/tcp/80 {
    ip saddr 10.42.230.0/24 meta mark set meta mark | 0x00004000
    ip saddr @affinity-default/aff/tcp/80/10.42.230.3/8080 goto \
ep-default/aff/tcp/80/10.42.230.3/8080
    goto ep-default/aff/tcp/80/10.42.230.3/8080
  }`,
      '  chain ep-default/aff/tcp/80/10.42.230.3/8080 {': `  chain \
ep-default/aff/tcp/80/10.42.230.3/8080 {
    update @affinity-default/aff/tcp/80/10.42.230.3/8080 { ip saddr }
    meta l4proto tcp dnat to 10.42.230.3:8080
  }`,
    },
  },
  {
    name: 'headless, ExternalName, IPv6 slices, other namespaces and bad names are left out',
    services: [
      svc('headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
      svc('ext', { type: 'ExternalName', externalName: 'example.org', ports: [{ port: 80 }] }),
      svc('v6', { clusterIP: '10.96.0.16', ports: [{ port: 80 }] }),
      svc('other', { clusterIP: '10.96.0.17', ports: [{ port: 80 }] }, 'other'),
      svc('Bad}', { clusterIP: '10.96.0.18', ports: [{ port: 80 }] }),
      svc('badip', { clusterIP: '10.96.0.1; flush ruleset', ports: [{ port: 80 }] }),
    ],
    slices: [
      slice('headless', [{ addresses: ['10.42.230.3'] }], [{ port: 80 }]),
      slice('v6', [{ addresses: ['fd00::1'] }], [{ port: 80 }], { addressType: 'IPv6' }),
      slice('other', [{ addresses: ['10.42.230.3'] }], [{ port: 80 }]),
    ],
    blocks: {
      '  map service_ips {': `  map service_ips {
    type ipv4_addr . inet_proto . inet_service : verdict
  }`,
      '  map no_endpoint_services {': `  map no_endpoint_services {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = {
      10.96.0.16 . tcp . 80 : goto reject-service,
      10.96.0.17 . tcp . 80 : goto reject-service
    }
  }`,
    },
    routed: 0,
    rejecting: 2,
    skipped: ['default/Bad}'],
  },
  {
    name: 'an address in two slices is one endpoint; a port mismatch yields none',
    services: [svc('dup', { clusterIP: '10.96.0.19', ports: [{ name: 'a', port: 80 }] })],
    slices: [
      slice('dup', [{ addresses: ['10.42.230.3'] }], [{ name: 'a', port: 8080 }]),
      slice('dup', [{ addresses: ['10.42.230.3'] }], [{ name: 'a', port: 8080 }]),
      slice('dup', [{ addresses: ['10.42.230.8'] }], [{ name: 'b', port: 8080 }]),
    ],
    blocks: {
      '  chain svc-default/dup/tcp/80 {': `  chain svc-default/dup/tcp/80 {
    ip saddr 10.42.230.0/24 meta mark set meta mark | 0x00004000
    goto ep-default/dup/tcp/80/10.42.230.3/8080
  }`,
    },
  },
  {
    name: 'a second Service on the same address and port is skipped, not merged',
    services: [
      svc('a', { clusterIP: '10.96.0.20', ports: [{ port: 80 }] }),
      svc('b', { clusterIP: '10.96.0.20', ports: [{ port: 80 }] }),
    ],
    slices: [],
    blocks: {},
    routed: 0,
    rejecting: 1,
    skipped: ['default/b:80'],
  },
  {
    name: 'custom masquerade mark',
    services: [],
    slices: [],
    options: { masqueradeMark: 0x100 },
    blocks: {
      '  chain nat-postrouting {': `  chain nat-postrouting {
    type nat hook postrouting priority 100; policy accept;
    meta mark & 0x00000100 == 0 return
    meta mark set meta mark ^ 0x00000100
    masquerade fully-random
  }`,
    },
    routed: 0,
  },
];

test('ruleset blocks, table-driven', () => {
  for (const c of cases) {
    const r = buildRuleset(c.services, c.slices, { ...opts, ...c.options });
    for (const [header, want] of Object.entries(c.blocks)) {
      assert.equal(block(r.text, header), want, `${c.name}: ${header.trim()}`);
    }
    assert.equal(r.routed, c.routed ?? 1, `${c.name}: routed`);
    assert.equal(r.rejecting, c.rejecting ?? 0, `${c.name}: rejecting`);
    assert.deepEqual(
      r.skipped.map((s) => s.service),
      c.skipped ?? [],
      `${c.name}: skipped`,
    );
    const again = buildRuleset([...c.services].reverse(), [...c.slices].reverse(), {
      ...opts,
      ...c.options,
    });
    assert.equal(again.text, r.text, `${c.name}: independent of input order`);
  }
});

test('invalid options are faults', () => {
  const table: [string, Partial<RulesOptions>][] = [
    ['cidr', { podCidr: '10.42.230.0' }],
    ['cidr prefix', { podCidr: '10.42.230.0/33' }],
    ['node address', { nodeAddresses: ['localhost'] }],
    ['mark', { masqueradeMark: 0 }],
  ];
  for (const [name, o] of table) {
    assert.throws(() => buildRuleset([], [], { ...opts, ...o }), Error, name);
  }
});

test('replace and delete scripts never fail on a missing table', () => {
  assert.equal(
    replaceScript('table ip flyces {\n}\n'),
    'table ip flyces {}\ndelete table ip flyces\ntable ip flyces {\n}\n',
  );
  assert.equal(deleteScript(), 'table ip flyces {}\ndelete table ip flyces\n');
});

test('the forward guard lets pods answer connections but start none beyond the pod network', () => {
  for (const exclusive of [false, true]) {
    const { text } = buildRuleset([], [], {
      ...opts,
      forwardGuard: { podNetwork: '10.44.0.0/16', exclusive },
    });
    const chain = text.slice(text.indexOf('chain filter-forward'));
    const at = (rule: string) => chain.indexOf(rule);
    // A reply from a pod to another node's address (masqueraded Service or NodePort
    // traffic) must pass before pod-sourced traffic to outside the pod network is dropped.
    assert.ok(at('ct state established,related accept') > 0, 'replies accepted');
    assert.ok(at('ct state established,related accept') < at('ip saddr 10.44.0.0/16 drop'));
    assert.equal(at('ip daddr != 10.44.0.0/16 drop') > 0, exclusive);
  }
});

test("pods' hostPorts: DNAT to the pod, masquerade from here and the pods, clashes left out", () => {
  const hp = (o: Partial<HostPort>): HostPort => ({
    pod: 'default/p',
    protocol: 'TCP',
    hostPort: 18080,
    podIP: '10.42.230.7',
    containerPort: 8080,
    ...o,
  });
  const r = buildRuleset([], [], { podCidr: '10.42.230.0/24' }, [
    hp({
      pod: 'default/q',
      hostPort: 5353,
      protocol: 'UDP',
      podIP: '10.42.230.8',
      containerPort: 53,
    }),
    hp({}),
    hp({ pod: 'default/same-port', podIP: '10.42.230.9' }),
    hp({ pod: 'default/pinned', hostPort: 9000, hostIP: '10.42.230.1' }),
    // Not the node's address (the kubernetes Service's): it must not catch what goes there.
    hp({ pod: 'default/intercept', hostPort: 443, hostIP: '10.43.0.1' }),
    hp({ pod: 'default/bad', hostPort: 70000 }),
    hp({ pod: 'default/weird', hostPort: 9001, protocol: 'ICMP' }),
    hp({ pod: 'default/inject', hostPort: 9002, podIP: '10.0.0.1; flush ruleset' }),
  ]);
  const block = (header: string) => {
    const lines = r.text.split('\n');
    const start = lines.indexOf(header);
    return lines.slice(start, lines.indexOf('  }', start) + 1).join('\n');
  };
  assert.equal(
    block('  chain hostports {'),
    [
      '  chain hostports {',
      '    ip daddr 10.43.0.1 fib daddr type local meta l4proto tcp th dport 443 goto hostport-1',
      '    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto udp th dport 5353 goto hostport-2',
      '    ip daddr 10.42.230.1 fib daddr type local meta l4proto tcp th dport 9000 goto hostport-3',
      '    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto tcp th dport 18080 goto hostport-4',
      '  }',
    ].join('\n'),
  );
  assert.equal(
    block('  chain hostport-4 {'),
    [
      '  chain hostport-4 {',
      '    ip saddr 10.42.230.0/24 meta mark set meta mark | 0x00004000',
      '    fib saddr type local meta mark set meta mark | 0x00004000',
      '    meta l4proto tcp dnat to 10.42.230.7:8080',
      '  }',
    ].join('\n'),
  );
  assert.deepEqual(
    r.skipped.map((s) => `${s.service}: ${s.reason}`),
    [
      'hostPort 9001 of pod default/weird: protocol "ICMP"',
      'hostPort 9002 of pod default/inject: address not IPv4',
      'hostPort 18080 of pod default/same-port: port in use',
      'hostPort 70000 of pod default/bad: port out of range',
    ],
  );
  assert.doesNotMatch(r.text, /flush/);
});
