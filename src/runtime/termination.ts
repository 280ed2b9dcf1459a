import { promises as fs, constants } from 'node:fs';

/**
 * A container's termination message, as kubelet reads it once the container has ended: what
 * the process wrote to its terminationMessagePath (a file of the runtime's, bind-mounted
 * there), at most MESSAGE_BYTES of it; or, under the FallbackToLogsOnError policy, when it
 * wrote nothing and failed, the end of its log: of the last LOG_LINES lines, the first
 * LOG_BYTES bytes.
 */

export const MESSAGE_BYTES = 4096;
export const LOG_LINES = 80;
export const LOG_BYTES = 2048;
/** How much of the end of a log is read to find its last lines. */
const LOG_WINDOW = 64 * 1024;

/** The start of `file`, at most `max` bytes; '' when it is missing or not a regular file. */
async function readHead(file: string, max: number): Promise<string> {
  let handle: fs.FileHandle;
  try {
    // Not through a link, nor waiting on a FIFO: the file is the container's to write.
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    if (!(await handle.stat()).isFile()) return '';
    const buf = Buffer.alloc(max);
    const { bytesRead } = await handle.read(buf, 0, max, 0);
    return buf.toString('utf8', 0, bytesRead);
  } catch {
    return '';
  } finally {
    await handle.close();
  }
}

/**
 * The lines of a CRI log's text (`TIME STREAM TAG CONTENT`, a tag P marking a part of a
 * line that the next entry goes on with), each with its newline; a last line without one
 * stays without.
 */
export function criLogLines(text: string): string[] {
  const lines: string[] = [];
  let pending = '';
  for (const entry of text.split('\n')) {
    if (entry === '') continue;
    const parts = entry.split(' ');
    if (parts.length < 4) continue;
    const content = parts.slice(3).join(' ');
    if (parts[2] === 'P') pending += content;
    else {
      lines.push(pending + content + '\n');
      pending = '';
    }
  }
  if (pending !== '') lines.push(pending);
  return lines;
}

/** Of the last LOG_LINES lines of the CRI log `file`, the first LOG_BYTES bytes. */
export async function logTail(file: string): Promise<string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  let text: string;
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - LOG_WINDOW);
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await handle.read(buf, 0, buf.length, start);
    text = buf.toString('utf8', 0, bytesRead);
    // A window that starts inside an entry drops that entry.
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
  } catch {
    return '';
  } finally {
    await handle.close();
  }
  const tail = Buffer.from(criLogLines(text).slice(-LOG_LINES).join(''));
  return tail.subarray(0, LOG_BYTES).toString('utf8');
}

/**
 * The message a container that ended with `exitCode` leaves: its termination file's, or,
 * with `fallbackToLogs`, its log's end when the file is empty and the exit a failure.
 * Undefined when there is none.
 */
export async function terminationMessage(opts: {
  messageFile: string;
  logFile: string;
  fallbackToLogs: boolean;
  exitCode: number | undefined;
}): Promise<string | undefined> {
  let message = await readHead(opts.messageFile, MESSAGE_BYTES);
  if (message === '' && opts.fallbackToLogs && opts.exitCode !== 0) {
    message = await logTail(opts.logFile);
  }
  return message === '' ? undefined : message;
}
