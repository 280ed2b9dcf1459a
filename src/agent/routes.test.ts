import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeObject } from '../api/types.js';
import { componentLogger } from '../log.js';
import { RouteManager, wantedRoutes, type PodRoute, type RouteTable } from './routes.js';

function node(name: string, podCIDR?: string, ip?: string): NodeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    spec: podCIDR ? { podCIDR } : {},
    status: ip ? { addresses: [{ type: 'InternalIP', address: ip }] } : {},
  };
}

test('a route per other node with a range and an address', () => {
  const nodes = [
    node('self', '10.42.0.0/24', '192.0.2.1'),
    node('b', '10.42.2.0/24', '192.0.2.3'),
    node('a', '10.42.1.0/24', '192.0.2.2'),
    node('no-range', undefined, '192.0.2.4'),
    node('no-address', '10.42.5.0/24'),
    node('odd', '10.42.6.0/24; reboot', '192.0.2.6'),
  ];
  assert.deepEqual(wantedRoutes('self', nodes), [
    { cidr: '10.42.1.0/24', via: '192.0.2.2' },
    { cidr: '10.42.2.0/24', via: '192.0.2.3' },
  ]);
});

test('the manager adds, moves and removes only what differs', async () => {
  const table = new Map<string, string>([['10.42.9.0/24', '192.0.2.9']]);
  const calls: string[] = [];
  const fake: RouteTable = {
    list: async () => [...table].map(([cidr, via]): PodRoute => ({ cidr, via })),
    replace: async (r) => {
      calls.push(`replace ${r.cidr} ${r.via}`);
      table.set(r.cidr, r.via);
    },
    remove: async (cidr) => {
      calls.push(`remove ${cidr}`);
      table.delete(cidr);
    },
  };
  const manager = new RouteManager('self', componentLogger('test'), fake);
  await manager.sync([node('a', '10.42.1.0/24', '192.0.2.2')]);
  assert.deepEqual(calls, ['remove 10.42.9.0/24', 'replace 10.42.1.0/24 192.0.2.2']);
  calls.length = 0;
  await manager.sync([node('a', '10.42.1.0/24', '192.0.2.2')]);
  assert.deepEqual(calls, [], 'nothing to do the second time');
  await manager.sync([node('a', '10.42.1.0/24', '192.0.2.20')]);
  assert.deepEqual(calls, ['replace 10.42.1.0/24 192.0.2.20'], 'a node that moved');
  await manager.clear();
  assert.equal(table.size, 0);
});
