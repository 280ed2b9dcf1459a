import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultService, type Service } from '../../api/service.js';
import type { Pod } from '../../api/types.js';
import { computeSlices, computeSubsets, mirrorSlices, truncateSubsets } from './compute.js';

function service(spec: Record<string, unknown>): Service {
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: { selector: { app: 'web' }, ...spec },
  } as Service;
  defaultService(svc);
  return svc;
}

interface PodOpts {
  ip?: string;
  ready?: boolean;
  phase?: string;
  terminating?: boolean;
  http?: number;
}

function pod(name: string, o: PodOpts): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${name}`,
      labels: { app: 'web' },
      ...(o.terminating ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: {
      nodeName: 'node-1',
      containers: [
        {
          name: 'c',
          image: 'nginx',
          ports: [{ name: 'http', containerPort: o.http ?? 8080, protocol: 'TCP' }],
        },
      ],
    },
    status: {
      phase: o.phase ?? 'Running',
      ...(o.ip ? { podIP: o.ip } : {}),
      conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }],
    },
  } as Pod;
}

const ref = (name: string) => ({ kind: 'Pod', namespace: 'default', name, uid: `uid-${name}` });
const addr = (ip: string, name: string) => ({ ip, nodeName: 'node-1', targetRef: ref(name) });

test('endpoints subsets from pods', () => {
  const named = service({ ports: [{ name: 'web', port: 80, targetPort: 'http' }] });
  const cases: { name: string; svc: Service; pods: Pod[]; want: unknown }[] = [
    { name: 'no pods', svc: named, pods: [], want: [] },
    {
      name: 'pod without IP or finished is left out',
      svc: named,
      pods: [pod('a', { ready: true }), pod('b', { ip: '10.42.0.2', phase: 'Succeeded' })],
      want: [],
    },
    {
      name: 'ready and not ready, named port resolved',
      svc: named,
      pods: [
        pod('b', { ip: '10.42.0.9', ready: false }),
        pod('a', { ip: '10.42.0.3', ready: true }),
      ],
      want: [
        {
          addresses: [addr('10.42.0.3', 'a')],
          notReadyAddresses: [addr('10.42.0.9', 'b')],
          ports: [{ name: 'web', port: 8080, protocol: 'TCP' }],
        },
      ],
    },
    {
      name: 'terminating pods are not endpoints',
      svc: named,
      pods: [pod('a', { ip: '10.42.0.3', ready: true, terminating: true })],
      want: [],
    },
    {
      name: 'different resolved ports give different subsets',
      svc: named,
      pods: [
        pod('a', { ip: '10.42.0.3', ready: true }),
        pod('b', { ip: '10.42.0.4', ready: true, http: 9090 }),
      ],
      want: [
        {
          addresses: [addr('10.42.0.3', 'a')],
          ports: [{ name: 'web', port: 8080, protocol: 'TCP' }],
        },
        {
          addresses: [addr('10.42.0.4', 'b')],
          ports: [{ name: 'web', port: 9090, protocol: 'TCP' }],
        },
      ],
    },
    {
      name: 'a port the pod lacks leaves the pod out',
      svc: service({ ports: [{ port: 53, protocol: 'UDP', targetPort: 'http' }] }),
      pods: [pod('a', { ip: '10.42.0.3', ready: true })],
      want: [],
    },
    {
      name: 'numeric target port, publishNotReadyAddresses',
      svc: service({ ports: [{ port: 80, targetPort: 8000 }], publishNotReadyAddresses: true }),
      pods: [
        pod('a', { ip: '10.42.0.3', ready: false }),
        pod('b', { ip: '10.42.0.4', ready: true, terminating: true }),
      ],
      want: [
        {
          addresses: [addr('10.42.0.3', 'a'), addr('10.42.0.4', 'b')],
          ports: [{ port: 8000, protocol: 'TCP' }],
        },
      ],
    },
    {
      name: 'hostname of a pod whose subdomain is the service, appProtocol',
      svc: service({ ports: [{ port: 80, targetPort: 8080, appProtocol: 'http' }] }),
      pods: [
        {
          ...pod('a', { ip: '10.42.0.3', ready: true }),
          spec: { ...pod('a', {}).spec, hostname: 'a-0', subdomain: 'web' },
        },
        {
          ...pod('b', { ip: '10.42.0.4', ready: true }),
          spec: { ...pod('b', {}).spec, hostname: 'b-0', subdomain: 'other' },
        },
      ],
      want: [
        {
          addresses: [{ ...addr('10.42.0.3', 'a'), hostname: 'a-0' }, addr('10.42.0.4', 'b')],
          ports: [{ port: 8080, protocol: 'TCP', appProtocol: 'http' }],
        },
      ],
    },
    {
      name: 'headless without ports',
      svc: service({ clusterIP: 'None' }),
      pods: [pod('a', { ip: '10.42.0.3', ready: true })],
      want: [{ addresses: [addr('10.42.0.3', 'a')] }],
    },
  ];
  for (const c of cases) assert.deepEqual(computeSubsets(c.svc, c.pods), c.want, c.name);
});

test('endpoint slices: conditions, terminating pods, chunks of at most max', () => {
  const svc = service({ ports: [{ name: 'web', port: 80, targetPort: 'http' }] });
  const slices = computeSlices(svc, [
    pod('a', { ip: '10.42.0.1', ready: true }),
    pod('b', { ip: '10.42.0.2', ready: false }),
    pod('c', { ip: '10.42.0.3', ready: true, terminating: true }),
  ]);
  assert.deepEqual(slices, [
    {
      ports: [{ name: 'web', port: 8080, protocol: 'TCP' }],
      endpoints: [
        {
          addresses: ['10.42.0.1'],
          conditions: { ready: true, serving: true, terminating: false },
        },
        {
          addresses: ['10.42.0.2'],
          conditions: { ready: false, serving: false, terminating: false },
        },
        {
          addresses: ['10.42.0.3'],
          conditions: { ready: false, serving: true, terminating: true },
        },
      ].map((e, i) => ({ ...e, nodeName: 'node-1', targetRef: ref('abc'[i]!) })),
    },
  ]);

  const many = Array.from({ length: 7 }, (_, i) =>
    pod(`p${i}`, { ip: `10.42.1.${i + 1}`, ready: true }),
  );
  const chunks = computeSlices(svc, many, 3);
  assert.deepEqual(
    chunks.map((s) => s.endpoints.length),
    [3, 3, 1],
  );
  assert.equal(new Set(chunks.flatMap((s) => s.endpoints.map((e) => e.addresses[0]))).size, 7);

  assert.deepEqual(computeSlices(svc, []), [{ ports: [], endpoints: [] }]);
});

test('endpoints are truncated at the capacity, ready addresses first', () => {
  const a = (n: number) => Array.from({ length: n }, (_, i) => ({ ip: `10.42.0.${i + 1}` }));
  const cases: { name: string; subsets: unknown[]; max: number; want: unknown[]; cut: boolean }[] =
    [
      {
        name: 'under capacity',
        subsets: [{ addresses: a(2), notReadyAddresses: a(1), ports: [{ port: 1 }] }],
        max: 3,
        want: [{ addresses: a(2), notReadyAddresses: a(1), ports: [{ port: 1 }] }],
        cut: false,
      },
      {
        name: 'not-ready addresses go first',
        subsets: [
          { notReadyAddresses: a(2), ports: [{ port: 1 }] },
          { addresses: a(3), ports: [{ port: 2 }] },
        ],
        max: 4,
        want: [
          { notReadyAddresses: a(1), ports: [{ port: 1 }] },
          { addresses: a(3), ports: [{ port: 2 }] },
        ],
        cut: true,
      },
      {
        name: 'a subset left empty is dropped',
        subsets: [{ addresses: a(3) }, { notReadyAddresses: a(2) }],
        max: 2,
        want: [{ addresses: a(2) }],
        cut: true,
      },
    ];
  for (const c of cases) {
    const got = truncateSubsets(c.subsets as never, c.max);
    assert.deepEqual(got.subsets, c.want, c.name);
    assert.equal(got.truncated, c.cut, c.name);
  }
});

test('hand-written endpoints are mirrored into slices', () => {
  const ep = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'db', namespace: 'default' },
    subsets: [
      {
        addresses: [{ ip: '192.168.1.10' }, { ip: '192.168.1.11', nodeName: 'n1' }],
        notReadyAddresses: [{ ip: '192.168.1.12' }],
        ports: [{ port: 5432, protocol: 'TCP' as const }],
      },
      { addresses: [{ ip: 'fe80::1' }], ports: [{ port: 5432, protocol: 'TCP' as const }] },
    ],
  };
  const ready = { ready: true, serving: true, terminating: false };
  assert.deepEqual(mirrorSlices(ep), [
    {
      ports: [{ name: '', port: 5432, protocol: 'TCP' }],
      endpoints: [
        { addresses: ['192.168.1.10'], conditions: ready },
        { addresses: ['192.168.1.11'], conditions: ready, nodeName: 'n1' },
        {
          addresses: ['192.168.1.12'],
          conditions: { ready: false, serving: false, terminating: false },
        },
      ],
    },
  ]);
  assert.equal(mirrorSlices(ep, 2).length, 2);
  assert.deepEqual(mirrorSlices({ ...ep, subsets: [] }), []);
});
