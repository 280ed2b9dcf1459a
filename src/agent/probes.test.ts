import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { RuntimeService } from '../runtime/runtime.js';
import { ProbeState, runProbe, type ProbeSpec, type ProbeTarget } from './probes.js';

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
    assert.match(closed.message, /dial tcp 127\.0\.0\.1/);
  } finally {
    http.close();
    tcp.close();
  }
});
