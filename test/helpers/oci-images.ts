import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';

import tar from 'tar-stream';

/** OCI images for tests, built in memory (layers with the host's static busybox). */

const BUSYBOX = readFileSync('/bin/busybox');
const APPLETS = ['sh', 'cat', 'ls', 'sleep', 'touch', 'chmod', 'stat', 'mkdir', 'rm'];

export type Entry = { header: Partial<tar.Header> & { name: string }; body?: string | Buffer };

const sha256 = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

export async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) pack.entry(e.header, e.body ?? '');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A layer with busybox in /bin, and the given entries after it. */
export function busyboxLayer(extra: Entry[]): Promise<Buffer> {
  return makeTar([
    { header: { name: 'bin', type: 'directory', mode: 0o755 } },
    { header: { name: 'bin/busybox', mode: 0o755, size: BUSYBOX.length }, body: BUSYBOX },
    ...APPLETS.map((a) => ({
      header: { name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' },
    })),
    ...extra,
  ]);
}

export const dir = (name: string, mode = 0o755): Entry => ({
  header: { name, type: 'directory', mode },
});
export const file = (name: string, body: string, mode = 0o644): Entry => ({
  header: { name, mode, size: Buffer.byteLength(body) },
  body,
});
export const link = (name: string, target: string): Entry => ({
  header: { name, type: 'symlink', linkname: target },
});

/**
 * An OCI archive of an image with these layers (base first), named `name`, whose command is
 * `cmd`; with `corrupt`, a byte of the last layer is flipped after it was digested.
 */
export async function makeArchive(
  file: string,
  layers: Buffer[],
  name: string,
  { cmd = ['/bin/sleep', '3600'], corrupt = false }: { cmd?: string[]; corrupt?: boolean } = {},
): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: cmd },
      rootfs: { type: 'layers', diff_ids: layers.map(sha256) },
    }),
  );
  const descriptor = (mediaType: string, b: Buffer) => ({
    mediaType,
    digest: sha256(b),
    size: b.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: layers.map((l) => descriptor('application/vnd.oci.image.layer.v1.tar', l)),
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        ...descriptor('application/vnd.oci.image.manifest.v1+json', manifest),
        annotations: { 'org.opencontainers.image.ref.name': name },
      },
    ],
  };
  const blobs = new Map([config, manifest, ...layers].map((b) => [sha256(b), b]));
  if (corrupt) {
    const last = Buffer.from(layers[layers.length - 1]);
    last[600] ^= 0xff;
    blobs.set(sha256(layers[layers.length - 1]), last);
  }
  await fs.writeFile(
    file,
    await makeTar([
      { header: { name: 'oci-layout' }, body: '{"imageLayoutVersion":"1.0.0"}' },
      { header: { name: 'index.json' }, body: JSON.stringify(index) },
      ...[...blobs].map(([digest, b]) => ({
        header: { name: `blobs/sha256/${digest.slice(7)}`, size: b.length },
        body: b,
      })),
    ]),
  );
}
