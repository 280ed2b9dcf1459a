import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';

import tar from 'tar-stream';

import { isErrno } from './fsutil.js';

/**
 * Reads an OCI archive: a tar of an OCI image layout (oci-layout, index.json,
 * blobs/sha256/...). Every blob is hashed while it is copied out of the archive and must
 * match the digest its name claims, so nothing unverified reaches the image store.
 */

/** An archive that is malformed or whose content does not match its digests. */
export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

/** An OCI content descriptor (the fields miniC reads). */
export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface OciIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface OciManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** A blob copied out of the archive and verified: its file in the staging directory. */
export interface StagedBlob {
  file: string;
  size: number;
}

export interface ArchiveContents {
  index: OciIndex;
  /** Verified blobs by digest (sha256:...). */
  blobs: Map<string, StagedBlob>;
}

const BLOB_PATH = /^blobs\/sha256\/([a-f0-9]{64})$/;
const MAX_JSON_BYTES = 8 << 20;

type Entry = tar.ExtractEvents['entry'][1];

async function readSmall(entry: Entry, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES)
      throw new ArchiveError(`${what} is larger than ${MAX_JSON_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Copies one blob to `file`, hashing it on the way; refuses it if the digest differs. */
async function stageBlob(entry: Entry, hex: string, file: string): Promise<StagedBlob> {
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'wx', 0o600);
  let size = 0;
  try {
    for await (const chunk of entry) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      await handle.writeFile(chunk as Buffer);
    }
  } finally {
    await handle.close();
  }
  const actual = hash.digest('hex');
  if (actual !== hex) {
    throw new ArchiveError(`blob sha256:${hex} is corrupt: its content hashes to sha256:${actual}`);
  }
  return { file, size };
}

function parseJson<T>(buf: Buffer, what: string): T {
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    throw new ArchiveError(`${what} is not valid JSON`);
  }
}

/**
 * Copies the blobs of the archive at `file` into `stagingDir` (which must exist) and
 * returns its index. Throws ArchiveError for a malformed archive or a corrupt blob; the
 * caller removes the staging directory either way.
 */
export async function readOciArchive(file: string, stagingDir: string): Promise<ArchiveContents> {
  const blobs = new Map<string, StagedBlob>();
  let index: OciIndex | undefined;
  let layout: { imageLayoutVersion?: string } | undefined;
  const extract = tar.extract();
  const source = createReadStream(file);
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract);

  try {
    for await (const entry of extract) {
      const name = entry.header.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
      const blob = BLOB_PATH.exec(name);
      if (entry.header.type !== 'file') {
        for await (const chunk of entry) void chunk;
      } else if (name === 'oci-layout') {
        layout = parseJson(await readSmall(entry, name), name);
      } else if (name === 'index.json') {
        index = parseJson(await readSmall(entry, name), name);
      } else if (blob && !blobs.has(`sha256:${blob[1]}`)) {
        const staged = await stageBlob(entry, blob[1], path.join(stagingDir, blob[1]));
        blobs.set(`sha256:${blob[1]}`, staged);
      } else {
        for await (const chunk of entry) void chunk;
      }
    }
  } catch (err) {
    source.destroy();
    extract.destroy();
    // A full disk is the staging directory's fault (the image store's), not the archive's.
    if (err instanceof ArchiveError || isErrno(err, 'ENOSPC', 'EDQUOT')) throw err;
    throw new ArchiveError(`cannot read OCI archive ${file}: ${(err as Error).message}`);
  }

  if (!layout?.imageLayoutVersion) throw new ArchiveError(`${file} has no oci-layout file`);
  if (!index || !Array.isArray(index.manifests)) {
    throw new ArchiveError(`${file} has no valid index.json`);
  }
  return { index, blobs };
}

/** Reads and parses a staged JSON blob, checking the descriptor's size. */
export async function readBlobJson<T>(contents: ArchiveContents, desc: Descriptor): Promise<T> {
  const blob = contents.blobs.get(desc.digest);
  if (!blob) throw new ArchiveError(`blob ${desc.digest} is missing from the archive`);
  if (blob.size !== desc.size) {
    throw new ArchiveError(
      `blob ${desc.digest} has ${blob.size} bytes, descriptor says ${desc.size}`,
    );
  }
  if (blob.size > MAX_JSON_BYTES) throw new ArchiveError(`blob ${desc.digest} is too large`);
  return parseJson<T>(await fs.readFile(blob.file), `blob ${desc.digest}`);
}
