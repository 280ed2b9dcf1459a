import { connect, constants } from 'node:http2';

/**
 * The gRPC probe of Kubernetes: one call of the standard health service
 * (`grpc.health.v1.Health/Check`, plaintext HTTP/2) on the pod's address. It passes only
 * when the server answers that the service (`""`, the server as a whole, unless the probe
 * names one) is SERVING. The messages of the protocol are two tiny protobufs, encoded and
 * decoded here by hand: a request with the service name as field 1 (string), an answer
 * with the status as field 1 (enum).
 */

export interface GrpcAction {
  port: number;
  service?: string;
}

export interface GrpcOutcome {
  ok: boolean;
  message: string;
}

const CHECK_PATH = '/grpc.health.v1.Health/Check';
/** grpc.health.v1.HealthCheckResponse.ServingStatus, by number. */
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
/** Larger answers are not a health check's; the call fails rather than buffer them. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The length-prefixed gRPC message of a HealthCheckRequest for `service`. */
export function checkRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const field =
    name.length === 0
      ? Buffer.alloc(0)
      : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(field.length, 1);
  return Buffer.concat([prefix, field]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** Reads a varint at `at`; undefined when the buffer ends inside it. */
function readVarint(buf: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    value += (buf[i] & 0x7f) * scale;
    scale *= 128;
    if ((buf[i] & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

/**
 * The serving status in a length-prefixed HealthCheckResponse, as its name; a message
 * without field 1 is UNKNOWN (protobuf's default). Throws on what is not such a message.
 */
export function servingStatus(answer: Buffer): string {
  if (answer.length < 5) throw new Error('the answer holds no gRPC message');
  if (answer[0] !== 0) throw new Error('the answer is compressed, which was not asked for');
  const length = answer.readUInt32BE(1);
  const body = answer.subarray(5, 5 + length);
  if (body.length !== length) throw new Error('the answer ends inside its message');
  let status = 0;
  for (let at = 0; at < body.length;) {
    const tag = readVarint(body, at);
    if (!tag) throw new Error('the answer is not a protobuf message');
    const wire = tag.value % 8;
    const value = readVarint(body, tag.next);
    if (wire !== 0 && wire !== 2) throw new Error('the answer is not a HealthCheckResponse');
    if (!value) throw new Error('the answer is not a protobuf message');
    if (wire === 0 && tag.value >>> 3 === 1) status = value.value;
    at = wire === 0 ? value.next : value.next + value.value;
  }
  return SERVING_STATUS[status] ?? `status ${status}`;
}

/** Calls the health service at host:port; never throws. */
export function grpcProbe(
  action: GrpcAction,
  host: string,
  timeoutMs: number,
): Promise<GrpcOutcome> {
  const service = action.service ?? '';
  const where = `${host.includes(':') ? `[${host}]` : host}:${action.port}`;
  return new Promise((resolve) => {
    const session = connect(`http://${where}`);
    let settled = false;
    const done = (ok: boolean, message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve({ ok, message });
    };
    const fail = (why: string) => done(false, `gRPC health check of ${where}: ${why}`);
    const timer = setTimeout(() => fail(`timed out after ${timeoutMs / 1000}s`), timeoutMs);
    session.on('error', (err) => fail(err.message));

    const call = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: CHECK_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'flyces-probe/1.0',
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    const note = (headers: Record<string, unknown>) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
      if (headers['grpc-message'] !== undefined) grpcMessage = String(headers['grpc-message']);
    };
    call.on('response', (headers) => {
      const status = Number(headers[constants.HTTP2_HEADER_STATUS]);
      if (status !== 200) fail(`HTTP status ${status}`);
      note(headers);
    });
    call.on('trailers', note);
    call.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) fail('the answer is too large');
      else chunks.push(chunk);
    });
    call.on('error', (err) => fail(err.message));
    call.on('end', () => {
      if (grpcStatus !== '0') {
        const why = grpcMessage ? `: ${percentDecoded(grpcMessage)}` : '';
        fail(`the call failed with gRPC status ${grpcStatus ?? 'missing'}${why}`);
        return;
      }
      try {
        const status = servingStatus(Buffer.concat(chunks));
        const name = service === '' ? 'the server' : `service "${service}"`;
        if (status === 'SERVING') done(true, `${name} is SERVING`);
        else fail(`${name} is ${status}`);
      } catch (err) {
        fail((err as Error).message);
      }
    });
    call.end(checkRequest(service));
  });
}

/** grpc-message is percent-encoded; a malformed one is shown as it came. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
