import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttp2 } from 'node:http2';
import { createServer as createTcp, type AddressInfo } from 'node:net';
import { checkRequest, servingStatus } from './grpc-probe.js';
import { runProbe, type ProbeTarget } from './probes.js';
import type { RuntimeService } from '../runtime/runtime.js';

/** A length-prefixed HealthCheckResponse with `status` (none: the field left out). */
function answer(status?: number): Buffer {
  const body = status === undefined ? Buffer.alloc(0) : Buffer.from([0x08, status]);
  const prefix = Buffer.from([0, 0, 0, 0, body.length]);
  return Buffer.concat([prefix, body]);
}

test('HealthCheckRequest and HealthCheckResponse encodings', () => {
  assert.deepEqual([...checkRequest('')], [0, 0, 0, 0, 0]);
  assert.deepEqual([...checkRequest('db')], [0, 0, 0, 0, 4, 0x0a, 2, 0x64, 0x62]);
  const cases: [Buffer, string][] = [
    [answer(1), 'SERVING'],
    [answer(2), 'NOT_SERVING'],
    [answer(), 'UNKNOWN'],
    [answer(9), 'status 9'],
    // An unknown string field (2) before the status is skipped.
    [Buffer.from([0, 0, 0, 0, 5, 0x12, 1, 0x78, 0x08, 1]), 'SERVING'],
  ];
  for (const [buf, want] of cases) assert.equal(servingStatus(buf), want, buf.toString('hex'));
  assert.throws(() => servingStatus(Buffer.from([0, 0, 0, 0, 9, 0x08])), /ends inside/);
  assert.throws(() => servingStatus(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
});

test('a grpc probe passes only when the health service answers SERVING', async () => {
  // The health service of a server whose "" is SERVING and "db" NOT_SERVING; other names
  // are NOT_FOUND (a trailers-only answer), as grpc-go's health server does; "hang"
  // is never answered.
  const server = createHttp2();
  server.on('stream', (stream, headers) => {
    if (headers[':path'] !== '/grpc.health.v1.Health/Check') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' });
      stream.end();
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const service = Buffer.concat(chunks).subarray(7).toString('utf8');
      if (service === 'hang') return;
      const status = service === '' ? 1 : service === 'db' ? 2 : undefined;
      if (status === undefined) {
        stream.respond({
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '5',
          'grpc-message': 'unknown%20service',
        });
        stream.end();
        return;
      }
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc' },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(answer(status));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // Something that is no HTTP/2 server at all.
  const plain = createTcp((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const plainPort = (plain.address() as AddressInfo).port;
  const target: ProbeTarget = {
    containerId: 'c1',
    podIP: '127.0.0.1',
    container: { name: 'c', image: 'i' },
  };
  const runtime = {} as RuntimeService;
  try {
    const cases: [object, boolean, RegExp][] = [
      [{ port }, true, /the server is SERVING/],
      [{ port, service: 'db' }, false, /service "db" is NOT_SERVING/],
      [{ port, service: 'other' }, false, /gRPC status 5: unknown service/],
      [{ port: plainPort }, false, /gRPC health check of 127\.0\.0\.1:\d+/],
      [{ port, service: 'hang' }, false, /timed out after 1s/],
    ];
    for (const [grpc, ok, message] of cases) {
      const outcome = await runProbe({ grpc: grpc as { port: number } }, target, runtime);
      assert.equal(outcome.ok, ok, `${JSON.stringify(grpc)}: ${outcome.message}`);
      assert.match(outcome.message, message);
    }
  } finally {
    server.close();
    plain.close();
  }
});
