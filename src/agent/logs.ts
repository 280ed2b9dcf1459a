import { createReadStream, watch as watchFile, statSync, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';

/**
 * Reading container logs. conmon writes them in the CRI format, one line per chunk of
 * output: `<RFC 3339 time> <stdout|stderr> <F|P> <text>`, where P marks a partial line that
 * the next entry continues. These functions give back what the container printed, optionally
 * with its timestamps, as `kubectl logs` shows it.
 */

export interface LogOptions {
  /** Only the last N lines. */
  tailLines?: number;
  /** Only lines written at or after this time (ms since epoch). */
  since?: number;
  /** Prefix each line with its RFC 3339 timestamp. */
  timestamps?: boolean;
  /** Stop after this many bytes. */
  limitBytes?: number;
}

export interface LogLine {
  time: string;
  stream: string;
  text: string;
  /** A last line the container ended without a newline: shown without one, as kubelet does. */
  partial?: boolean;
}

/** Parses one CRI log entry; undefined for a malformed line. */
export function parseCriLine(line: string): (LogLine & { partial: boolean }) | undefined {
  const first = line.indexOf(' ');
  const second = line.indexOf(' ', first + 1);
  const third = line.indexOf(' ', second + 1);
  if (first < 0 || second < 0) return undefined;
  const tag = third < 0 ? line.slice(second + 1) : line.slice(second + 1, third);
  const text = third < 0 ? '' : line.slice(third + 1);
  return {
    time: line.slice(0, first),
    stream: line.slice(first + 1, second),
    text,
    partial: tag === 'P',
  };
}

/** Turns the log's entries into what a follower writes (see LineAssembler, rawEntries). */
interface EntryReader {
  push(line: string): LogLine | undefined;
  flush(): LogLine | undefined;
}

/** Joins partial entries into whole lines, in order. */
export class LineAssembler implements EntryReader {
  private pending?: LogLine;

  push(line: string): LogLine | undefined {
    const entry = parseCriLine(line);
    if (!entry) return undefined;
    if (this.pending) {
      this.pending.text += entry.text;
      if (entry.partial) return undefined;
      const whole = this.pending;
      this.pending = undefined;
      return whole;
    }
    if (entry.partial) {
      this.pending = { time: entry.time, stream: entry.stream, text: entry.text };
      return undefined;
    }
    return { time: entry.time, stream: entry.stream, text: entry.text };
  }

  /** The line still waiting for its end, as a partial one; there is none after this. */
  flush(): LogLine | undefined {
    const rest = this.pending;
    this.pending = undefined;
    return rest && { ...rest, partial: true };
  }
}

/** Formats a line for `kubectl logs`; times are shown in UTC with a Z, as kubelet does. */
export function formatLine(line: LogLine, timestamps: boolean | undefined): string {
  const end = line.partial ? '' : '\n';
  if (!timestamps) return `${line.text}${end}`;
  return `${line.time.replace(/\+00:00$/, 'Z')} ${line.text}${end}`;
}

/**
 * Reads the whole log file and returns the lines that pass the options' filters. A last
 * line still partial is among them, unless `assembler` is given: it then stays there for a
 * follower to finish.
 */
export async function readLog(
  path: string,
  opts: LogOptions,
  assembler?: LineAssembler,
): Promise<{ lines: LogLine[]; offset: number }> {
  const lines: LogLine[] = [];
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    return { lines, offset: 0 };
  }
  const keep = (line: LogLine) => {
    if (opts.since !== undefined && Date.parse(line.time) < opts.since) return;
    lines.push(line);
    if (opts.tailLines !== undefined && lines.length > opts.tailLines) lines.shift();
  };
  const assembling = assembler ?? new LineAssembler();
  const rl = createInterface({
    input: createReadStream(path, { end: Math.max(0, size - 1) }),
    crlfDelay: Infinity,
  });
  for await (const raw of rl) {
    const line = assembling.push(raw);
    if (line) keep(line);
  }
  // A container that ended in the middle of a line leaves it partial: it is shown all the same.
  const rest = assembler ? undefined : assembling.flush();
  if (rest) keep(rest);
  return { lines: opts.tailLines === 0 ? [] : lines, offset: size };
}

/**
 * Writes the log to `out`, then, if `follow`, keeps writing new entries until `done()` says
 * the container has stopped (and the file has been drained) or the reader goes away. As
 * kubelet does, a follower gets each entry as conmon wrote it: a part of a line (output
 * without a newline, a progress bar's dots) at once, its end later; with timestamps, each
 * part with its own.
 */
export async function streamLog(
  path: string,
  out: Writable,
  opts: LogOptions & { follow?: boolean; done?: () => Promise<boolean> },
): Promise<void> {
  const { lines, offset } = await readLog(path, opts);
  let written = 0;
  // Counted in bytes, as limitBytes is: a line of non-ASCII text is longer than its length.
  const write = (line: LogLine): boolean => {
    // Followed lines pass the since filter too (it may lie ahead: --since-time in the future).
    if (opts.since !== undefined && Date.parse(line.time) < opts.since) return true;
    const bytes = Buffer.from(formatLine(line, opts.timestamps), 'utf8');
    if (opts.limitBytes !== undefined && written + bytes.length > opts.limitBytes) {
      out.write(bytes.subarray(0, opts.limitBytes - written));
      written = opts.limitBytes;
      return false;
    }
    written += bytes.length;
    out.write(bytes);
    return true;
  };
  for (const line of lines) if (!write(line)) return void out.end();
  if (!opts.follow) return void out.end();
  const done = opts.done ?? (async () => false);
  await follow(path, offset, write, out, done, EACH_ENTRY, () => roomIn(out));
}

/**
 * Resolves once `out` takes writes again (or has closed): a reader slower than the log
 * holds the follower back, instead of the log piling up in memory.
 */
export function roomIn(out: Writable): Promise<void> {
  if (!out.writableNeedDrain || out.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const go = () => {
      out.off('drain', go);
      out.off('close', go);
      resolve();
    };
    out.on('drain', go);
    out.on('close', go);
  });
}

/** Every entry as it is, a partial one marked so (it is written without a newline). */
const EACH_ENTRY: EntryReader = { push: parseCriLine, flush: () => undefined };

/** Most bytes one read of a followed log takes in; the rest waits for the next turn. */
const FOLLOW_CHUNK = 1 << 20;

/**
 * Follows the log from `start`. conmon rotates a log that reaches its size limit by renaming
 * a new file over it, so the open file is read to its end, and then the file now at `path`,
 * if it is another one, is followed from its start; a file truncated in place is read from
 * its start again too.
 */
async function follow(
  path: string,
  start: number,
  write: (line: LogLine) => boolean,
  out: Writable,
  done: () => Promise<boolean>,
  assembler: EntryReader,
  /** Resolves once what was written has gone on: the next read waits for it. */
  room: () => Promise<void>,
): Promise<void> {
  let offset = start;
  let carry = Buffer.alloc(0);
  let closed = false;
  out.on('close', () => (closed = true));
  let file = await openLog(path);
  let watcher: FSWatcher | undefined;
  let wake: () => void = () => {};
  const watchPath = () => {
    watcher?.close();
    try {
      watcher = watchFile(path, () => wake());
    } catch {
      // The file may not exist yet; polling below still finds it.
    }
  };
  watchPath();
  try {
    while (!closed) {
      const size = file ? (await file.handle.stat()).size : 0;
      if (size < offset) offset = 0;
      if (file && size > offset) {
        const chunk = await readAt(file.handle, offset, Math.min(FOLLOW_CHUNK, size - offset));
        offset += chunk.length;
        // Whole lines only: a chunk may end inside a line, or inside a character.
        const text = Buffer.concat([carry, chunk]);
        const end = text.lastIndexOf(0x0a) + 1;
        carry = text.subarray(end);
        for (const part of text.subarray(0, end).toString('utf8').split('\n').slice(0, -1)) {
          const line = assembler.push(part);
          if (line && !write(line)) return;
        }
        await room();
        continue;
      }
      const rotated = await openLog(path, file?.ino);
      if (rotated) {
        await file?.handle.close();
        file = rotated;
        offset = 0;
        carry = Buffer.alloc(0);
        watchPath();
        continue;
      }
      if (await done()) {
        const rest = assembler.flush();
        if (rest) write(rest);
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 500);
      });
    }
  } finally {
    watcher?.close();
    await file?.handle.close();
    out.end();
  }
}

/** The log file now at `path`, opened, unless it is missing or is the file `ino` already. */
async function openLog(
  path: string,
  ino?: number,
): Promise<{ handle: FileHandle; ino: number } | undefined> {
  try {
    if ((await stat(path)).ino === ino) return undefined;
    const handle = await open(path, 'r');
    return { handle, ino: (await handle.stat()).ino };
  } catch {
    return undefined;
  }
}

async function readAt(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, offset);
  return buffer.subarray(0, bytesRead);
}

/**
 * Follows the log from its end as it is now, for `kubectl attach`: each entry is handed to
 * `write` as it arrives, a partial one too (a shell's prompt has no newline), with its
 * newline when it ends a line, so that the output reads as the container wrote it. Ends
 * when `done()` says the container stopped and the file is drained, when `write` returns
 * false, or when `stop` closes.
 */
export async function followFromEnd(
  path: string,
  write: (entry: LogLine) => boolean,
  stop: Writable,
  done: () => Promise<boolean>,
  /** Resolves once the writes have gone on to the client (see roomIn). */
  room: () => Promise<void>,
): Promise<void> {
  // From the start of an entry conmon may still be writing: it is shown whole.
  const start = await entryBoundary(path);
  const raw: EntryReader = {
    push: (line) => {
      const entry = parseCriLine(line);
      if (!entry) return undefined;
      return { ...entry, text: entry.partial ? entry.text : `${entry.text}\n` };
    },
    flush: () => undefined,
  };
  await follow(path, start, write, stop, done, raw, room);
}

/** Bytes read back from the end to find where the last entry ends. */
const BOUNDARY_LOOKBACK = 64 * 1024;

/** The offset just after the log's last complete entry (0 for a missing or empty log). */
async function entryBoundary(path: string): Promise<number> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch {
    return 0;
  }
  try {
    const size = (await handle.stat()).size;
    const from = Math.max(0, size - BOUNDARY_LOOKBACK);
    const tail = await readAt(handle, from, size - from);
    const end = tail.lastIndexOf(0x0a);
    return end < 0 ? from : from + end + 1;
  } finally {
    await handle.close();
  }
}
