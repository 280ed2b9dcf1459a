import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InformerFactory } from '../client/factory.js';
import type { KubeClient } from '../client/rest.js';
import { componentLogger } from '../log.js';
import { claimForwarding, FORWARDING_RECORD } from './ip-forward.js';
import { ServiceProxy } from './service-proxy.js';

const CLUSTER_CIDR = '10.42.0.0/16';
const EXCLUSIVE = `ip daddr != ${CLUSTER_CIDR} drop`;

/** Informers with nothing in them: the proxy only needs their handlers and lists. */
const emptyInformers = {
  informer: () => ({ addHandlers: () => undefined, addIndex: () => undefined, list: () => [] }),
} as unknown as InformerFactory;

function setup(forwarding: '0' | '1') {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-proxy-'));
  const files = {
    record: join(dir, FORWARDING_RECORD),
    ipForwardFile: join(dir, 'ip_forward'),
    bootIdFile: join(dir, 'boot_id'),
  };
  writeFileSync(files.ipForwardFile, `${forwarding}\n`);
  writeFileSync(files.bootIdFile, 'boot-a\n');
  const scripts: string[] = [];
  const proxy = () =>
    new ServiceProxy({
      informers: emptyInformers,
      podCidr: '10.42.0.0/24',
      clusterCidr: CLUSTER_CIDR,
      nodeAddresses: [],
      table: 'flyces_test',
      forwarding: files,
      nft: async (script) => void scripts.push(script),
      log: componentLogger('proxy-test'),
    });
  return {
    files,
    proxy,
    scripts,
    value: () => readFileSync(files.ipForwardFile, 'utf8').trim(),
    recorded: () => existsSync(files.record),
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

test('service proxy: forwarding it turned on goes back off when it stops', async () => {
  const cases: { was: '0' | '1'; owns: boolean }[] = [
    { was: '0', owns: true },
    { was: '1', owns: false },
  ];
  for (const c of cases) {
    const s = setup(c.was);
    const proxy = s.proxy();
    proxy.register();
    await proxy.start();
    assert.equal(s.value(), '1', `was ${c.was}`);
    assert.equal(s.recorded(), c.owns);
    // A machine that did not forward before forwards only pod traffic.
    assert.equal(s.scripts[0].includes(EXCLUSIVE), c.owns);
    await proxy.stop();
    assert.equal(s.value(), c.was);
    assert.equal(s.recorded(), false);
    s.done();
  }
});

test('service proxy: after a killed run, the next one owns forwarding and turns it off', async () => {
  const s = setup('0');
  // What the killed run left: forwarding on, and the record that it turned it on.
  await claimForwarding(s.files);
  const proxy = s.proxy();
  proxy.register();
  await proxy.start();
  assert.equal(s.value(), '1');
  assert.ok(s.scripts[0].includes(EXCLUSIVE), 'the guard of a machine that did not forward');
  await proxy.stop();
  assert.equal(s.value(), '0');
  assert.equal(s.recorded(), false);
  s.done();
});

/** A client whose Services are `items`, listed once and never changed by a watch. */
function listingClient(items: object[]): KubeClient {
  return {
    list: async () => ({ items, resourceVersion: '1' }),
    watch: () => ({ done: new Promise<void>(() => undefined), stop: () => undefined }),
  } as unknown as KubeClient;
}

test("service proxy: a namespace's Services and the kubernetes Service, for containers", async () => {
  const svc = (namespace: string, name: string) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name, resourceVersion: '1' },
    spec: { clusterIP: '10.43.0.9', ports: [{ port: 80 }] },
  });
  const informers = new InformerFactory(
    listingClient([
      svc('default', 'kubernetes'),
      svc('default', 'web'),
      svc('a', 'db'),
      svc('a', 'cache'),
      svc('b', 'db'),
    ]),
  );
  const s = setup('1');
  const proxy = new ServiceProxy({
    informers,
    podCidr: '10.42.0.0/24',
    clusterCidr: CLUSTER_CIDR,
    nodeAddresses: [],
    forwarding: s.files,
    log: componentLogger('proxy-test'),
  });
  await informers.start();
  const names = (ns: string) =>
    proxy
      .servicesFor(ns)
      .map((v) => `${v.metadata.namespace}/${v.metadata.name}`)
      .sort();
  assert.deepEqual(names('a'), ['a/cache', 'a/db', 'default/kubernetes']);
  assert.deepEqual(names('b'), ['b/db', 'default/kubernetes']);
  assert.deepEqual(names('default'), ['default/kubernetes', 'default/web']);
  assert.deepEqual(names('none'), ['default/kubernetes']);
  informers.stop();
  s.done();
});
