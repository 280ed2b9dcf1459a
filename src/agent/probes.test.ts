import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Pod } from '../api/types.js';
import type { EventRecorder } from '../client/events.js';
import type { Logger } from '../log.js';
import type { ContainerStatus, RuntimeService } from '../runtime/runtime.js';
import { Prober, ProbeState, runProbe, type ProbeSpec, type ProbeTarget } from './probes.js';

test('thresholds flip the result only after enough outcomes in a row', () => {
  const cases: { spec: ProbeSpec; outcomes: boolean[]; results: (boolean | undefined)[] }[] = [
    { spec: {}, outcomes: [true, false, false, false], results: [true, true, true, false] },
    {
      spec: { successThreshold: 2 },
      outcomes: [true, false, true, true],
      results: [undefined, undefined, undefined, true],
    },
    { spec: { failureThreshold: 1 }, outcomes: [false, true], results: [false, true] },
    {
      spec: {},
      outcomes: [false, false, true, false, false, false],
      results: [undefined, undefined, true, true, true, false],
    },
  ];
  for (const c of cases) {
    const state = new ProbeState(c.spec);
    const seen = c.outcomes.map((ok) => {
      state.record(ok);
      return state.result;
    });
    assert.deepEqual(seen, c.results, JSON.stringify(c));
  }
});

const fakeRuntime = (exitCode: number | undefined, timedOut = false) =>
  ({ execSync: async () => ({ exitCode, timedOut, output: 'out' }) }) as unknown as RuntimeService;

test('probe handlers: exec, httpGet, tcpSocket', async () => {
  const http = createHttp((req, res) => {
    res.statusCode = req.url === '/ok' ? 200 : req.url === '/redirect' ? 302 : 503;
    res.end();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const tcp = createTcp((s) => s.end());
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const httpPort = (http.address() as AddressInfo).port;
  const tcpPort = (tcp.address() as AddressInfo).port;
  const target: ProbeTarget = {
    containerId: 'c1',
    podIP: '127.0.0.1',
    container: { name: 'c', image: 'i', ports: [{ name: 'web', containerPort: httpPort }] },
  };
  try {
    const cases: [ProbeSpec, RuntimeService, boolean][] = [
      [{ exec: { command: ['true'] } }, fakeRuntime(0), true],
      [{ exec: { command: ['false'] } }, fakeRuntime(1), false],
      [{ exec: { command: ['sleep'] } }, fakeRuntime(undefined, true), false],
      [{ httpGet: { path: '/ok', port: httpPort } }, fakeRuntime(0), true],
      [{ httpGet: { path: '/redirect', port: 'web' } }, fakeRuntime(0), true],
      [{ httpGet: { path: '/down', port: httpPort } }, fakeRuntime(0), false],
      [{ httpGet: { path: '/ok', port: 'nope' } }, fakeRuntime(0), false],
      [{ tcpSocket: { port: tcpPort } }, fakeRuntime(0), true],
      [{}, fakeRuntime(0), false],
    ];
    for (const [spec, runtime, want] of cases) {
      const outcome = await runProbe(spec, target, runtime);
      assert.equal(outcome.ok, want, `${JSON.stringify(spec)}: ${outcome.message}`);
    }
    tcp.close();
    const closed = await runProbe({ tcpSocket: { port: tcpPort } }, target, fakeRuntime(0));
    assert.equal(closed.ok, false);
    assert.equal(closed.message, `dial tcp 127.0.0.1:${tcpPort}: connect: connection refused`);
    const refused = await runProbe(
      { httpGet: { path: '/x', port: tcpPort } },
      target,
      fakeRuntime(0),
    );
    assert.equal(
      refused.message,
      `Get "http://127.0.0.1:${tcpPort}/x": dial tcp 127.0.0.1:${tcpPort}: connect: connection refused`,
    );
  } finally {
    http.close();
    tcp.close();
  }
});

test('a container killed for its liveness probe is not probed or killed again while it stops', async () => {
  const stops: string[] = [];
  let release = () => {};
  const stopped = new Promise<void>((r) => (release = r));
  const runtime = {
    execSync: async () => ({ exitCode: 1, timedOut: false, output: 'unhealthy' }),
    stopContainer: async (id: string) => {
      stops.push(id);
      await stopped;
    },
  } as unknown as RuntimeService;
  const reasons: string[] = [];
  const events = {
    normal: (_o: unknown, reason: string) => reasons.push(reason),
    warning: (_o: unknown, reason: string) => reasons.push(reason),
  } as unknown as EventRecorder;
  const log = { info() {}, warn() {}, debug() {} } as unknown as Logger;
  const prober = new Prober(runtime, events, log, { changed() {} });
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u1' },
    spec: {
      terminationGracePeriodSeconds: 30,
      containers: [
        {
          name: 'c',
          image: 'i',
          livenessProbe: { exec: { command: ['false'] }, periodSeconds: 1, failureThreshold: 1 },
        },
      ],
    },
  };
  const status = (id: string, state: 'running' | 'exited') =>
    ({ id, name: 'c', state }) as unknown as ContainerStatus;
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    prober.sync(pod, '10.0.0.9', [status('c1', 'running')]);
    await until(() => stops.length > 0);
    // The pod worker syncs again while c1 stops through its grace period.
    for (let i = 0; i < 3; i++) {
      prober.sync(pod, '10.0.0.9', [status('c1', 'running')]);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(stops, ['c1']);
    assert.equal(prober.ready('c1'), false, 'a container being killed is not ready');
    assert.deepEqual(
      reasons.filter((r) => r === 'Killing'),
      ['Killing'],
    );
    // Its replacement is probed (and here killed) as usual.
    release();
    prober.sync(pod, '10.0.0.9', [status('c1', 'exited'), status('c2', 'running')]);
    await until(() => stops.length > 1);
    assert.deepEqual(stops, ['c1', 'c2']);
  } finally {
    prober.stopAll();
  }
});
