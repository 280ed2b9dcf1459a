import assert from 'node:assert/strict';
import { test } from 'node:test';

import { pino } from 'pino';

import { Proxier, type ProxierOptions, type SyncRecord } from './proxier.js';
import { deleteScript } from './rules.js';
import type { EndpointSlice, Service } from './types.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake cluster whose Service count can be bumped, and a fake nft that records scripts. */
function harness(extra: Partial<ProxierOptions> = {}) {
  const services: Service[] = [];
  const scripts: { at: number; script: string }[] = [];
  const records: SyncRecord[] = [];
  let failures = 0;
  const proxier = new Proxier({
    podCidr: '10.42.230.0/24',
    source: { services: () => services, endpointSlices: (): EndpointSlice[] => [] },
    nft: async (script) => {
      scripts.push({ at: performance.now(), script });
      await sleep(5);
      if (failures > 0) {
        failures--;
        throw new Error('nft: injected failure');
      }
    },
    onSync: (r) => records.push(r),
    log,
    ...extra,
  });
  const addService = () => {
    const n = services.length + 1;
    services.push({
      metadata: { name: `s${n}` },
      spec: { clusterIP: `10.96.1.${n}`, ports: [{ port: 80 }] },
    });
    proxier.changed();
  };
  return { proxier, scripts, records, addService, failNext: (n: number) => (failures = n) };
}

test('the first sync runs at once and replaces the table in one script', async () => {
  const h = harness();
  const t0 = performance.now();
  h.proxier.start();
  await h.proxier.synced();
  assert.ok(h.scripts[0].at - t0 < 50, 'first sync is immediate');
  assert.match(
    h.scripts[0].script,
    /^table ip flyces \{\}\ndelete table ip flyces\ntable ip flyces \{\n/,
  );
  await h.proxier.stop();
});

test('bursts are coalesced: syncs at least 100 ms apart, each change applied within 1 s', async () => {
  const h = harness();
  h.proxier.start();
  await h.proxier.synced();
  for (let i = 0; i < 40; i++) {
    h.addService();
    await sleep(10);
  }
  await h.proxier.synced();
  // synced() asks for one more sync, which finds nothing new when the last change was
  // applied already: such a sync runs no nft script.
  const applies = h.records.filter((r) => r.applied).map((r) => r.startedAt);
  assert.ok(applies.length >= 3 && applies.length <= 9, `${applies.length} syncs for 40 changes`);
  assert.equal(h.scripts.length, applies.length, 'a script for every sync that applied');
  assert.ok(h.records.length - applies.length <= 1, 'at most the last sync found nothing');
  for (let i = 1; i < applies.length; i++) {
    assert.ok(applies[i] - applies[i - 1] >= 99, `gap ${applies[i] - applies[i - 1]} ms`);
  }
  assert.match(h.scripts.at(-1)!.script, /10\.96\.1\.40 \. tcp \. 80 : goto reject-service/);
  assert.ok(h.proxier.stats().maxLatencyMs < 1000, `${h.proxier.stats().maxLatencyMs} ms`);
  assert.ok(h.records.every((r) => r.ok && r.durationMs >= 0));
  await h.proxier.stop();
});

test('an unchanged state does not run nft; a periodic resync does', async () => {
  const h = harness({ resyncMs: 300 });
  h.proxier.start();
  await h.proxier.synced();
  await h.proxier.synced();
  assert.equal(h.scripts.length, 1);
  assert.equal(h.records.at(-1)!.applied, false);
  await sleep(400);
  assert.equal(h.scripts.length, 2, 'resync re-applied the same table');
  await h.proxier.stop();
});

test('a failed sync keeps the change pending and retries after about 1 s', async () => {
  const h = harness();
  h.failNext(1);
  const t0 = performance.now();
  h.proxier.start();
  await h.proxier.synced();
  const took = performance.now() - t0;
  assert.ok(took >= 950 && took < 2000, `recovered after ${took} ms`);
  assert.deepEqual(
    h.records.map((r) => r.ok),
    [false, true],
  );
  assert.match(h.records[0].error ?? '', /injected failure/);
  assert.equal(h.proxier.stats().failures, 1);
  await h.proxier.stop();
});

test('stop removes the table, waits for a sync in flight and ignores later changes', async () => {
  const h = harness();
  h.proxier.start();
  await sleep(1);
  const pending = assert.rejects(h.proxier.synced(), /stopped/);
  await h.proxier.stop();
  await pending;
  assert.equal(h.scripts.at(-1)!.script, deleteScript());
  const count = h.scripts.length;
  h.addService();
  await sleep(150);
  assert.equal(h.scripts.length, count);
  await assert.rejects(h.proxier.synced(), /stopped/);
});
