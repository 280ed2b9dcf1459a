import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { quietLogs } from '../log.js';
import { removeAllPodVolumes } from '../agent/volumes.js';
import { forwardingFiles, releaseForwarding } from '../proxy/ip-forward.js';
import { nftRunner } from '../proxy/proxier.js';
import { bridgeTable, deleteScript } from '../proxy/rules.js';
import { ImageStore } from '../runtime/images.js';
import { MiniC, recordedBridge } from '../runtime/minic.js';
import { releaseStateDir, runtimeStateDir } from '../runtime/state-dir.js';

/** flyces commands that work on this node's data dir directly, without the API server. */

/** The node's image store, with the registries.yaml of its data dir. */
function imageStore(dataDir: string): ImageStore {
  return new ImageStore({
    root: join(dataDir, 'images'),
    registriesConfig: join(dataDir, 'registries.yaml'),
  });
}

export async function imagePullCommand(ref: string, dataDir: string): Promise<void> {
  quietLogs();
  const image = await imageStore(dataDir).pullImage(ref);
  console.log(`pulled ${image.names.join(', ')} (${shownIds(image)})`);
}

export async function imageImportCommand(
  file: string,
  dataDir: string,
  name?: string,
): Promise<void> {
  quietLogs();
  const images = imageStore(dataDir);
  const imported = await images.importArchive(file, name);
  for (const image of imported) {
    console.log(`imported ${image.names.join(', ')} (${shownIds(image)})`);
  }
}

/**
 * An image's ID as `flyces image ls` shows it (its config's digest, which pods' imageID
 * names too), then the digest of the manifest it came with.
 */
function shownIds(image: { id: string; digest: string }): string {
  return `ID ${shortId(image.id)}, manifest ${image.digest}`;
}

/** The 12 hex digits of an image ID that listings show, as Docker and crictl do. */
function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export async function imageListCommand(dataDir: string): Promise<void> {
  quietLogs();
  const images = imageStore(dataDir);
  const list = await images.listImages();
  const rows = list.flatMap((i) =>
    i.names.map((n) => [n, shortId(i.id), `${(i.size / 1e6).toFixed(1)}MB`]),
  );
  const header = ['IMAGE', 'ID', 'SIZE'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  for (const r of [header, ...rows])
    console.log(
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join('   ')
        .trimEnd(),
    );
}

/**
 * Stops and removes every sandbox and container miniC keeps under the data dir, the pod
 * bridge and the node proxy's rules: what a user runs to clear the machine after `flyces up` has been stopped. IP
 * forwarding goes back off if flyCes turned it on (see proxy/ip-forward.ts). The store is
 * left alone, so the next `flyces up` recreates the pods it still holds.
 */
export async function downCommand(dataDir: string, bridgeOption?: string): Promise<void> {
  // What it removed is said in one line at the end; warnings still show.
  quietLogs();
  // The bridge `flyces up` noted in the data dir, unless the user names one.
  const bridge = bridgeOption ?? recordedBridge(join(dataDir, 'runtime')) ?? 'flyces0';
  const images = imageStore(dataDir);
  const stateRoot = runtimeStateDir(dataDir);
  const runtime = new MiniC({ root: join(dataDir, 'runtime'), stateRoot, images, bridge });
  const containers = await runtime.listContainers();
  // What a reboot left is worth removing, but not at the price of the rest of the clean-up.
  await runtime.removeLeftovers().catch((err: unknown) => {
    console.error(`flyces down: could not remove what the last boot left: ${String(err)}`);
  });
  await Promise.all(
    containers.filter((c) => c.state === 'running').map((c) => runtime.stopContainer(c.id, 10)),
  );
  for (const sandbox of await runtime.listSandboxes()) {
    await runtime.stopSandbox(sandbox.id);
    await runtime.removeSandbox(sandbox.id);
  }
  await runtime.removeSpareNetwork();
  await removeAllPodVolumes(dataDir);
  try {
    await promisify(execFile)('ip', ['link', 'del', bridge]);
  } catch (err) {
    if (!/Cannot find device/.test((err as { stderr?: string }).stderr ?? '')) throw err;
  }
  // The Service rules of a run that was killed (a clean stop removes them itself).
  await nftRunner()(deleteScript(bridgeTable(bridge))).catch((err: unknown) => {
    console.error(`flyces down: could not remove the Service rules: ${String(err)}`);
  });
  // A run killed before it could turn IP forwarding back off left a record saying so.
  const forwardingOff = await releaseForwarding(forwardingFiles(dataDir));
  // Last: if its tmpfs is still busy, everything else is already gone.
  await releaseStateDir(stateRoot);
  console.log(`removed ${containers.length} containers and the ${bridge} bridge`);
  if (forwardingOff) console.log('turned IP forwarding back off, as flyCes had turned it on');
}
