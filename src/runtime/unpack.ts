import { createHash } from 'node:crypto';
import { constants, createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import tar from 'tar-stream';

import type { Logger } from '../log.js';
import { run } from './exec.js';
import { isErrno } from './fsutil.js';

/**
 * Unpacks one image layer (a tar, plain or gzip) into a directory that overlayfs can use
 * as a lowerdir. No entry may write outside that directory: names with `..` are refused,
 * leading `/` is stripped, every parent is checked component by component with lstat and
 * a symlink among them is refused, and files are opened with O_NOFOLLOW. Device nodes and
 * FIFOs are skipped. OCI whiteouts become overlayfs whiteouts: `.wh.NAME` a 0/0 character
 * device, `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory.
 */

/** A layer that is malformed or tries to write outside its root. */
export class LayerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayerError';
  }
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream, to be checked against rootfs.diff_ids. */
  diffId: string;
  /** Bytes of regular file content written. */
  size: number;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

async function startsWith(file: string, magic: number[]): Promise<boolean> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(magic.length);
    const { bytesRead } = await handle.read(buf, 0, magic.length, 0);
    return bytesRead === magic.length && magic.every((b, i) => buf[i] === b);
  } finally {
    await handle.close();
  }
}

/**
 * Unpacks the layer blob at `blobFile` into `dest` (which must exist and be empty) and
 * returns the uncompressed digest. The compression is recognised from the content.
 */
export async function unpackLayer(
  blobFile: string,
  dest: string,
  log: Logger,
): Promise<UnpackResult> {
  if (await startsWith(blobFile, ZSTD_MAGIC)) {
    throw new LayerError('zstd-compressed layers are not supported; use gzip or plain tar');
  }
  const gzip = await startsWith(blobFile, GZIP_MAGIC);
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const extract = tar.extract();
  const source = createReadStream(blobFile);
  const feeding = gzip
    ? pipeline(source, createGunzip(), tap, extract)
    : pipeline(source, tap, extract);
  // Observed below; this only keeps an early failure from being reported as unhandled.
  feeding.catch(() => undefined);

  const writer = new LayerWriter(dest, log);
  try {
    for await (const entry of extract) await writer.write(entry);
  } catch (err) {
    source.destroy();
    extract.destroy();
    await feeding.catch(() => undefined);
    throw err;
  }
  await feeding;
  return { diffId: `sha256:${hash.digest('hex')}`, size: writer.size };
}

/** The path of a tar entry relative to the layer root, as components; refuses `..`. */
export function entryComponents(name: string): string[] {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new LayerError(`layer entry "${name}" contains ".."`);
  return parts;
}

/** One entry of a layer: its header and a readable stream of its content. */
type Entry = tar.ExtractEvents['entry'][1];

async function drain(entry: Entry): Promise<void> {
  for await (const chunk of entry) void chunk;
}

/** Creates the entries of one layer below `root`, one at a time, in archive order. */
class LayerWriter {
  size = 0;
  /** Directories (relative paths) already known to be real directories, not symlinks. */
  private readonly safeDirs = new Set<string>(['']);

  constructor(
    private readonly root: string,
    private readonly log: Logger,
  ) {}

  async write(entry: Entry): Promise<void> {
    const header = entry.header;
    const parts = entryComponents(header.name);
    if (parts.length === 0) return drain(entry);
    const base = parts[parts.length - 1];
    await this.ensureParents(parts);

    if (base === OPAQUE_MARKER) return this.opaque(parts, entry);
    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(parts, entry);
    switch (header.type) {
      case 'directory':
        return this.directory(parts, entry);
      case 'file':
      case 'contiguous-file':
      case null:
      case undefined:
        return this.file(parts, entry);
      case 'symlink':
        return this.symlink(parts, entry);
      case 'link':
        return this.hardlink(parts, entry);
      default:
        this.log.debug({ entry: header.name, type: header.type }, 'skipping layer entry');
        return drain(entry);
    }
  }

  /** Creates missing parent directories; refuses a parent that is a symlink or a file. */
  private async ensureParents(parts: string[], create = true): Promise<void> {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.safeDirs.has(rel)) continue;
      const abs = path.join(this.root, rel);
      try {
        const st = await fs.lstat(abs);
        if (st.isSymbolicLink()) {
          throw new LayerError(`layer entry below "${rel}" would follow a symlink`);
        }
        if (!st.isDirectory()) throw new LayerError(`layer path "${rel}" is not a directory`);
      } catch (err) {
        if (!create || !isErrno(err, 'ENOENT')) throw err;
        await fs.mkdir(abs, { mode: 0o755 });
      }
      this.safeDirs.add(rel);
    }
  }

  /** Removes whatever is at the entry's path, unless both are directories. */
  private async clear(abs: string, keepDirectory: boolean): Promise<boolean> {
    let st;
    try {
      st = await fs.lstat(abs);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
    if (keepDirectory && st.isDirectory()) return true;
    await fs.rm(abs, { recursive: true, force: true });
    // A removed directory may have had known-safe children; forget them all.
    if (st.isDirectory()) {
      this.safeDirs.clear();
      this.safeDirs.add('');
    }
    return false;
  }

  private abs(parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  private async directory(parts: string[], entry: Entry): Promise<void> {
    const abs = this.abs(parts);
    const mode = (entry.header.mode ?? 0o755) & 0o7777;
    if (!(await this.clear(abs, true))) await fs.mkdir(abs);
    await fs.lchown(abs, entry.header.uid ?? 0, entry.header.gid ?? 0);
    await fs.chmod(abs, mode);
    this.safeDirs.add(parts.join('/'));
    await drain(entry);
  }

  private async file(parts: string[], entry: Entry): Promise<void> {
    const abs = this.abs(parts);
    const header = entry.header;
    await this.clear(abs, false);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const handle = await fs.open(abs, flags, 0o600);
    try {
      // writeFile on a handle appends at the current position and retries short writes.
      for await (const chunk of entry) await handle.writeFile(chunk as Buffer);
      // chown before chmod: chown clears setuid/setgid bits.
      await handle.chown(header.uid ?? 0, header.gid ?? 0);
      await handle.chmod((header.mode ?? 0o644) & 0o7777);
      if (header.mtime) await handle.utimes(header.mtime, header.mtime);
    } finally {
      await handle.close();
    }
    this.size += header.size ?? 0;
  }

  private async symlink(parts: string[], entry: Entry): Promise<void> {
    const abs = this.abs(parts);
    const target = entry.header.linkname;
    if (!target) throw new LayerError(`symlink "${entry.header.name}" has no target`);
    await this.clear(abs, false);
    // The target is never resolved here; it is resolved inside the container's root.
    await fs.symlink(target, abs);
    await fs.lchown(abs, entry.header.uid ?? 0, entry.header.gid ?? 0);
    await drain(entry);
  }

  private async hardlink(parts: string[], entry: Entry): Promise<void> {
    const abs = this.abs(parts);
    const targetParts = entryComponents(entry.header.linkname ?? '');
    if (targetParts.length === 0) {
      throw new LayerError(`hard link "${entry.header.name}" has no target`);
    }
    await this.ensureParents(targetParts, false);
    const target = this.abs(targetParts);
    const st = await fs.lstat(target);
    if (st.isDirectory()) throw new LayerError(`hard link "${entry.header.name}" to a directory`);
    await this.clear(abs, false);
    // link(2) does not follow a symlink target; it links the symlink itself.
    await fs.link(target, abs);
    await drain(entry);
  }

  private async whiteout(parts: string[], entry: Entry): Promise<void> {
    const name = parts[parts.length - 1].slice(WHITEOUT_PREFIX.length);
    const hidden = entryComponents(name);
    if (hidden.length !== 1) throw new LayerError(`malformed whiteout "${entry.header.name}"`);
    const abs = this.abs([...parts.slice(0, -1), name]);
    await this.clear(abs, false);
    await run('mknod', ['-m', '0', abs, 'c', '0', '0']);
    await drain(entry);
  }

  private async opaque(parts: string[], entry: Entry): Promise<void> {
    const dir = this.abs(parts.slice(0, -1));
    await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', '--', dir]);
    await drain(entry);
  }
}
