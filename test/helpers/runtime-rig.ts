import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

import { ImageStore } from '../../src/runtime/images.js';
import { MiniC, type MiniCOptions } from '../../src/runtime/minic.js';
import type { SandboxConfig } from '../../src/runtime/runtime.js';
import { removeCgroupsUnder, unmountUnder } from './cleanup.js';

const exec = promisify(execFile);

export interface RuntimeRig {
  tmp: string;
  images: ImageStore;
  options: MiniCOptions;
  minic: MiniC;
  /** A sandbox config for pod `name` (its hostname too), with a uid of this rig's own. */
  pod(name: string, labels?: Record<string, string>): SandboxConfig;
}

/**
 * A MiniC for a process test: a temp root of its own (images and runtime under it), the
 * test's own bridge and pod range, and a cgroup parent named after the root. When the test
 * ends its sandboxes are removed, then `cleanUp` runs (what else the test made), then its
 * mounts, bridge, cgroups and files go.
 */
export async function runtimeRig(
  t: TestContext,
  prefix: string,
  net: { bridge: string; podCidr: string },
  more: (tmp: string) => Partial<MiniCOptions> | Promise<Partial<MiniCOptions>> = () => ({}),
  cleanUp: () => Promise<void> | void = () => undefined,
): Promise<RuntimeRig> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const images = new ImageStore({ root: path.join(tmp, 'images') });
  const options: MiniCOptions = {
    root: path.join(tmp, 'runtime'),
    images,
    podCidr: net.podCidr,
    bridge: net.bridge,
    cgroupParent: `flyces-test-${path.basename(tmp)}`,
    ...(await more(tmp)),
  };
  const minic = new MiniC(options);
  t.after(async () => {
    for (const sb of await minic.listSandboxes().catch(() => [])) {
      await minic.removeSandbox(sb.id).catch((err) => console.error('cleanup', err));
    }
    await cleanUp();
    await unmountUnder(tmp);
    await exec('ip', ['link', 'del', net.bridge]).catch(() => undefined);
    // The parent exists in every hierarchy runc used, not only those in cgroup_paths.
    await removeCgroupsUnder(options.cgroupParent!);
    await fs.rm(tmp, { recursive: true, force: true });
  });
  const pod = (name: string, labels: Record<string, string> = {}): SandboxConfig => ({
    podUid: 'uid-' + path.basename(tmp),
    podName: name,
    podNamespace: 'default',
    hostname: name,
    labels,
  });
  return { tmp, images, options, minic, pod };
}
