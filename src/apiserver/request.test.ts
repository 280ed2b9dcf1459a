import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { ApiError } from '../api/errors.js';
import { decodeBody, MAX_BODY_BYTES, MAX_DEPTH, readBody } from './request.js';

const asRequest = (stream: Readable) => stream as unknown as IncomingMessage;

test('readBody joins the chunks of a body, and an empty body is empty', async () => {
  const cases: [string, Buffer[], string][] = [
    ['one chunk', [Buffer.from('{"a":1}')], '{"a":1}'],
    ['several chunks', [Buffer.from('{"a"'), Buffer.from(':'), Buffer.from('1}')], '{"a":1}'],
    ['no chunk', [], ''],
  ];
  for (const [what, chunks, want] of cases) {
    const body = await readBody(asRequest(Readable.from(chunks)));
    assert.equal(body.toString(), want, what);
  }
});

test('readBody refuses a body past the limit without reading it all', async () => {
  const stream = new PassThrough();
  const read = readBody(asRequest(stream));
  stream.write(Buffer.alloc(MAX_BODY_BYTES));
  stream.write(Buffer.alloc(1));
  await assert.rejects(
    read,
    (err) => err instanceof ApiError && err.reason === 'RequestEntityTooLarge',
  );
  stream.destroy();
});

test('readBody fails when the client goes away before the end', async () => {
  const stream = new PassThrough();
  const read = readBody(asRequest(stream));
  stream.write('{"a"');
  stream.destroy();
  await assert.rejects(read);
});

test('decodeBody refuses YAML nested too deep in flow style before parsing it', () => {
  // A million brackets: the parser took seconds and a gigabyte each before failing, and a
  // few such bodies at once ran the server out of memory.
  const n = 1_000_000;
  const deep = Buffer.from(`items: ${'['.repeat(n)}${']'.repeat(n)}`);
  assert.ok(deep.length < MAX_BODY_BYTES);
  assert.throws(
    () => decodeBody(deep, 'application/yaml'),
    (err: unknown) =>
      err instanceof ApiError &&
      err.reason === 'BadRequest' &&
      err.message === `the request body is nested deeper than ${MAX_DEPTH} levels`,
  );
  // Brackets inside scalars are text, and nesting up to the limit parses.
  const nested = `${'['.repeat(MAX_DEPTH - 1)}1${']'.repeat(MAX_DEPTH - 1)}`;
  const fine = `a: "[[[["\nb: 'x[{'\nc: p[q\nd: ${nested}\n`;
  const value = decodeBody(Buffer.from(fine), 'application/yaml') as Record<string, unknown>;
  assert.equal(value.a, '[[[[');
  assert.equal(value.c, 'p[q');
});
