import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFieldError } from './errors.js';
import { printers } from './printers.js';
import { byGroupResource } from './resources.js';
import {
  defaultService,
  prepareServiceUpdate,
  validateEndpointSlice,
  validateService,
  type Service,
} from './service.js';
import { validateMeta } from './validation.js';

function svc(spec: Record<string, unknown>, name = 'web'): Service {
  const obj = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: structuredClone(spec),
  } as Service;
  defaultService(obj);
  return obj;
}

const port = (p: Record<string, unknown>) => ({ port: 80, ...p });

test('service validation errors carry Kubernetes field paths and wording', () => {
  const cases: { name: string; spec: Record<string, unknown>; want: string[] }[] = [
    { name: 'valid ClusterIP', spec: { selector: { app: 'web' }, ports: [port({})] }, want: [] },
    {
      name: 'headless without ports',
      spec: { clusterIP: 'None', selector: { app: 'web' } },
      want: [],
    },
    { name: 'no ports', spec: { selector: { app: 'web' } }, want: ['spec.ports: Required value'] },
    {
      name: 'second port without name',
      spec: { ports: [port({ name: 'http' }), port({ port: 81 })] },
      want: ['spec.ports[1].name: Required value'],
    },
    {
      name: 'port out of range',
      spec: { ports: [port({ port: 70000, targetPort: 8080 })] },
      want: ['spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive'],
    },
    {
      name: 'duplicate port and protocol',
      spec: { ports: [port({ name: 'a' }), port({ name: 'b' })] },
      want: ['spec.ports[1]: Duplicate value: {"port":80,"protocol":"TCP"}'],
    },
    {
      name: 'same port, other protocol',
      spec: { ports: [port({ name: 'a' }), port({ name: 'b', protocol: 'UDP' })] },
      want: [],
    },
    {
      name: 'bad protocol',
      spec: { ports: [port({ protocol: 'ICMP' })] },
      want: [
        'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      ],
    },
    {
      name: 'named target port too long',
      spec: { ports: [port({ targetPort: 'a-very-long-port-name' })] },
      want: [
        'spec.ports[0].targetPort: Invalid value: "a-very-long-port-name": ' +
          'must be no more than 15 characters',
      ],
    },
    {
      name: 'nodePort on ClusterIP',
      spec: { ports: [port({ nodePort: 30080 })] },
      want: ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    },
    {
      name: 'nodePort out of range',
      spec: { type: 'NodePort', ports: [port({ nodePort: 70000 })] },
      want: [
        'spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive',
      ],
    },
    {
      name: 'LoadBalancer refused',
      spec: { type: 'LoadBalancer', ports: [port({})] },
      want: [
        'spec.type: Unsupported value: "LoadBalancer": supported values: ' +
          '"ClusterIP", "ExternalName", "NodePort"',
      ],
    },
    { name: 'ExternalName', spec: { type: 'ExternalName', externalName: 'example.com' }, want: [] },
    {
      name: 'ExternalName without a name, with a cluster IP',
      spec: { type: 'ExternalName', clusterIP: '10.43.0.9' },
      want: [
        'spec.externalName: Required value',
        'spec.clusterIPs: Forbidden: may not be set for ExternalName services',
      ],
    },
    {
      name: 'ExternalName not a DNS name',
      spec: { type: 'ExternalName', externalName: 'no_such' },
      want: [
        'spec.externalName: Invalid value: "no_such": a lowercase RFC 1123 subdomain must ' +
          "consist of lower case alphanumeric characters, '-' or '.', and must start and end " +
          'with an alphanumeric character',
      ],
    },
    {
      name: 'bad cluster IP',
      spec: { clusterIP: '10.43.0.300', ports: [port({})] },
      want: [
        'spec.clusterIP: Invalid value: "10.43.0.300": must be a valid IP address, ' +
          '(e.g. 10.9.8.7 or 2001:db8::ffff)',
      ],
    },
    {
      name: 'session affinity',
      spec: { sessionAffinity: 'Sticky', ports: [port({})] },
      want: [
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
      ],
    },
    {
      name: 'IPv6 family',
      spec: { ipFamilies: ['IPv6'], ports: [port({})] },
      want: ['spec.ipFamilies[0]: Unsupported value: "IPv6": supported values: "IPv4"'],
    },
    {
      name: 'headless NodePort',
      spec: { type: 'NodePort', clusterIP: 'None', ports: [port({})] },
      want: [
        'spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for NodePort services',
      ],
    },
  ];
  for (const c of cases) {
    const got = validateService(svc(c.spec)).map(formatFieldError);
    assert.deepEqual(got, c.want, c.name);
  }
});

test('service names must start with a letter (DNS-1035)', () => {
  const rule = byGroupResource.get('/services')!.nameRule;
  for (const name of ['1web', 'Web', 'web_1', 'web-']) {
    const errs = validateMeta({ name }, true, rule).map(formatFieldError);
    assert.equal(errs.length, 1, name);
    assert.match(errs[0]!, /^metadata.name: Invalid value: ".*": a DNS-1035 label/);
  }
  assert.deepEqual(validateMeta({ name: 'web-1' }, true, rule), []);
});

test('defaults fill what Kubernetes fills', () => {
  const s = svc({ clusterIP: '10.43.0.9', ports: [port({})] });
  assert.deepEqual(s.spec, {
    type: 'ClusterIP',
    clusterIP: '10.43.0.9',
    clusterIPs: ['10.43.0.9'],
    sessionAffinity: 'None',
    internalTrafficPolicy: 'Cluster',
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }],
  });
  const n = svc({ type: 'NodePort', sessionAffinity: 'ClientIP', ports: [port({})] });
  assert.equal(n.spec.externalTrafficPolicy, 'Cluster');
  assert.equal(n.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds, 10800);
});

test('clusterIP is immutable; updates keep allocated values the client left out', () => {
  const old = svc({ clusterIP: '10.43.0.9', ports: [port({})] });
  const changed = svc({ clusterIP: '10.43.0.10', ports: [port({})] });
  assert.deepEqual(validateService(changed, old).map(formatFieldError), [
    'spec.clusterIP: Invalid value: "10.43.0.10": field is immutable',
  ]);

  const replaced = { ...svc({ ports: [port({})] }) };
  prepareServiceUpdate(replaced, old);
  assert.equal(replaced.spec.clusterIP, '10.43.0.9');
  assert.deepEqual(validateService(replaced, old), []);

  const nodePort = svc({
    type: 'NodePort',
    clusterIP: '10.43.0.9',
    ports: [port({ nodePort: 30080 })],
  });
  const noNodePort = svc({ type: 'NodePort', ports: [port({})] });
  prepareServiceUpdate(noNodePort, nodePort);
  assert.equal(noNodePort.spec.ports![0]!.nodePort, 30080);
  const toClusterIP = svc({ type: 'ClusterIP', ports: [port({ nodePort: 30080 })] });
  prepareServiceUpdate(toClusterIP, nodePort);
  assert.equal(toClusterIP.spec.ports![0]!.nodePort, undefined);
  assert.deepEqual(validateService(toClusterIP, nodePort), []);
});

test('turning into an ExternalName alias and back', () => {
  const old = svc({ clusterIP: '10.43.0.9', ports: [port({})] });
  const alias = svc({ ...old.spec, type: 'ExternalName', externalName: 'db.example.com' });
  prepareServiceUpdate(alias, old);
  assert.equal(alias.spec.clusterIP, undefined);
  assert.equal(alias.spec.ipFamilies, undefined);
  assert.deepEqual(validateService(alias, old), []);
  const back = svc({ ports: [port({})] });
  prepareServiceUpdate(back, alias);
  assert.equal(back.spec.clusterIP, undefined, 'to be allocated');
  assert.deepEqual(validateService(back, alias), []);
  const now = Date.now();
  assert.deepEqual(printers.Service!.cells(alias, now).slice(1, 5), [
    'ExternalName',
    '<none>',
    'db.example.com',
    '80/TCP',
  ]);
});

test('printers show services, endpoints and slices as kubectl does', () => {
  const now = Date.now();
  const s = svc({
    type: 'NodePort',
    clusterIP: '10.43.0.9',
    selector: { app: 'web', tier: 'front' },
    ports: [
      port({ name: 'http', nodePort: 30080 }),
      port({ name: 'dns', port: 53, protocol: 'UDP' }),
    ],
  });
  s.metadata.creationTimestamp = new Date(now - 5000).toISOString();
  assert.deepEqual(printers.Service!.cells(s, now), [
    'web',
    'NodePort',
    '10.43.0.9',
    '<none>',
    '80:30080/TCP,53/UDP',
    '5s',
    'app=web,tier=front',
  ]);
  const ep = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'web' },
    subsets: [
      {
        addresses: ['10.42.0.1', '10.42.0.2', '10.42.0.3', '10.42.0.4'].map((ip) => ({ ip })),
        ports: [{ port: 8080 }],
      },
    ],
  };
  assert.equal(
    printers.Endpoints!.cells(ep, now)[1],
    '10.42.0.1:8080,10.42.0.2:8080,10.42.0.3:8080 + 1 more...',
  );
  const empty = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web' } };
  assert.equal(printers.Endpoints!.cells(empty, now)[1], '<none>');
  const slice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abc' },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.42.0.1'], conditions: {} }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
  assert.deepEqual(printers.EndpointSlice!.cells(slice, now).slice(0, 4), [
    'web-abc',
    'IPv4',
    '8080',
    '10.42.0.1',
  ]);
});

test('endpoint slice validation', () => {
  const base = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: {} };
  const cases: { slice: Record<string, unknown>; want: string[] }[] = [
    { slice: { addressType: 'IPv4', endpoints: [] }, want: [] },
    { slice: { endpoints: [] }, want: ['addressType: Required value'] },
    {
      slice: { addressType: 'IPv4', endpoints: [{ addresses: ['nope'], conditions: {} }] },
      want: ['endpoints[0].addresses[0]: Invalid value: "nope": must be a valid IPv4 address'],
    },
  ];
  for (const c of cases) {
    const got = validateEndpointSlice({ ...base, ...c.slice } as never).map(formatFieldError);
    assert.deepEqual(got, c.want);
  }
});
