import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApiError } from '../api/errors.js';

/**
 * Answers an HTTP upgrade request (WebSocket, SPDY) that is refused with an ordinary
 * response carrying the error's Status, then closes the connection. Clients such as
 * kubectl read that Status and show its message.
 */
export function rejectUpgrade(socket: Duplex, err: ApiError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(err.toStatus());
  const head = [
    `HTTP/1.1 ${err.code} ${STATUS_CODES[err.code] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
