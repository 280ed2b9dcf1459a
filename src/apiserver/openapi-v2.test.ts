import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { RESOURCE_TYPES } from '../api/resources.js';
import { encodeOpenApiV2, negotiateOpenApiV2 } from './openapi-v2.js';
import { openApiV2Document } from './openapi.js';
import { WireReader, WireType } from './protobuf/wire.js';

/** The payloads of every length-delimited field `n` of a message, in order. */
function all(buf: Uint8Array, n: number): Uint8Array[] {
  const r = new WireReader(buf);
  const out: Uint8Array[] = [];
  for (let f = r.tag(); f; f = r.tag()) {
    if (f.wireType !== WireType.Bytes) r.skip(f.wireType);
    else if (f.number === n) out.push(r.bytes());
    else r.bytes();
  }
  return out;
}

function one(buf: Uint8Array, n: number): Uint8Array | undefined {
  return all(buf, n)[0];
}

/** Whether varint field `n` of a message is set to 1 (a proto3 bool that is true). */
function flag(buf: Uint8Array, n: number): boolean {
  const r = new WireReader(buf);
  let set = false;
  for (let f = r.tag(); f; f = r.tag()) {
    if (f.wireType === WireType.Varint && f.number === n) set = r.uint() === 1;
    else r.skip(f.wireType);
  }
  return set;
}

const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/** A gnostic `NamedAny` list as name → value parsed from its YAML. */
function extensions(buf: Uint8Array, field: number): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const pair of all(buf, field)) {
    out.set(text(one(pair, 1))!, YAML.parse(text(one(one(pair, 2)!, 2)) ?? ''));
  }
  return out;
}

/**
 * Whether the PATCH of `kind` takes the `fieldValidation` query parameter, read from the
 * protobuf the way client-go's v2 verifier reads gnostic's Document.
 */
function patchTakesFieldValidation(doc: Uint8Array, kind: string): boolean | undefined {
  for (const named of all(one(doc, 8)!, 2)) {
    const patch = one(one(named, 2)!, 8);
    if (!patch) continue;
    const gvk = extensions(patch, 13).get('x-kubernetes-group-version-kind') as { kind: string };
    if (gvk.kind !== kind) continue;
    const names = all(patch, 8).map((item) => {
      const query = one(one(one(item, 1)!, 2)!, 3)!;
      return text(one(query, 4));
    });
    return names.includes('fieldValidation');
  }
  return undefined;
}

test('openapi v2: the protobuf document holds every path of the JSON one', () => {
  const json = openApiV2Document();
  const doc = encodeOpenApiV2(json);
  assert.equal(text(one(doc, 1)), '2.0');
  assert.equal(text(one(one(doc, 2)!, 1)), 'flyCes');
  const names = all(one(doc, 8)!, 2).map((named) => text(one(named, 1)));
  assert.deepEqual(names, Object.keys(json.paths as object));
  assert.equal(one(doc, 9)?.length, 0, 'definitions present and empty');
});

test('openapi v2: each PATCH names its kind and takes fieldValidation', () => {
  const doc = encodeOpenApiV2(openApiV2Document());
  for (const kind of ['ConfigMap', 'Deployment', 'Namespace', 'Service']) {
    assert.equal(patchTakesFieldValidation(doc, kind), true, kind);
  }
  assert.equal(patchTakesFieldValidation(doc, 'List'), undefined);
});

test('openapi v2: query parameters keep their type and uniqueItems', () => {
  const only = RESOURCE_TYPES.filter((rt) => rt.kind === 'ConfigMap');
  const doc = encodeOpenApiV2(openApiV2Document(only));
  const collection = all(one(doc, 8)!, 2).find((n) => !text(one(n, 1))!.endsWith('{name}'))!;
  const list = one(one(collection, 2)!, 2)!; // PathItem.get
  assert.equal(text(one(list, 5)), 'listConfigMap');
  const watch = all(list, 8)
    .map((item) => one(one(one(item, 1)!, 2)!, 3)!)
    .find((q) => text(one(q, 4)) === 'watch')!;
  assert.equal(text(one(watch, 2)), 'query');
  assert.equal(text(one(watch, 6)), 'boolean');
  assert.equal(flag(watch, 20), true, 'uniqueItems');
  assert.equal(flag(watch, 1), false, 'required');
  const responses = one(list, 9)!;
  const ok = one(responses, 1)!;
  assert.equal(text(one(ok, 1)), '200');
  assert.equal(text(one(one(one(ok, 2)!, 1)!, 1)), 'OK');
});

test('openapi v2: a document part the encoder does not know is a fault', () => {
  const cases: { name: string; doc: Record<string, unknown>; err: RegExp }[] = [
    { name: 'top-level key', doc: { swagger: '2.0', host: 'x' }, err: /Document\.host/ },
    { name: 'definitions', doc: { definitions: { Pod: {} } }, err: /definitions \(Pod\)/ },
    {
      name: 'path parameter',
      doc: { paths: { '/a': { get: { parameters: [{ name: 'n', in: 'path' }] } } } },
      err: /parameters in path/,
    },
    {
      name: 'operation key',
      doc: { paths: { '/a': { get: { tags: ['t'] } } } },
      err: /Operation\.tags/,
    },
  ];
  for (const c of cases) assert.throws(() => encodeOpenApiV2(c.doc), c.err, c.name);
});

test('openapi v2: content negotiation', () => {
  const pb = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';
  const pbOld = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
  const cases: [string | undefined, 'json' | 'protobuf' | undefined][] = [
    [undefined, 'json'],
    ['', 'json'],
    ['*/*', 'json'],
    ['application/json', 'json'],
    ['application/*', 'json'],
    [pbOld, 'protobuf'], // what client-go sends
    [pb, 'protobuf'],
    [`${pb}, application/json`, 'protobuf'],
    [`application/json;q=0.5, ${pb}`, 'protobuf'],
    [`${pb};q=0, application/json`, 'json'],
    ['text/html', undefined],
    ['application/vnd.kubernetes.protobuf', undefined],
  ];
  for (const [accept, want] of cases) assert.equal(negotiateOpenApiV2(accept), want, accept);
});
