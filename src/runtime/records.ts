import { createHash } from 'node:crypto';
import path from 'node:path';
import { listDir, readJson, writeJsonAtomic } from './fsutil.js';
import type { ContainerStatus } from './runtime.js';

/**
 * What miniC keeps on disk under its root, one JSON file per sandbox and per container,
 * each written atomically: the facts a new MiniC reads back after the agent restarted.
 */

export interface SandboxRecord {
  id: string;
  podUid: string;
  podName: string;
  podNamespace: string;
  hostname: string;
  labels: Record<string, string>;
  attempt: number;
  netns: string;
  /** The pod uses the node's network namespace: no netns and no CNI of its own. */
  hostNetwork?: boolean;
  /** The CNI config ADD ran with, so DEL undoes exactly that. */
  cniConfig: Record<string, unknown>;
  ip?: string;
  state: 'ready' | 'notready';
  createdAt: string;
}

/** What miniC keeps on disk for a container: its status less what is read live. */
export type ContainerRecord = Omit<ContainerStatus, 'state' | 'logPath'> & {
  stopSignal: string;
  /** cgroup directories runc made; removed with the container. */
  cgroupPaths?: string[];
};

/** One sandbox per pod uid and attempt, as `runSandbox` derives it. */
export function sandboxId(podUid: string, attempt: number): string {
  return createHash('sha256').update(`${podUid}/${attempt}`).digest('hex');
}

/** Reads and writes the records of one miniC root. */
export class RuntimeRecords {
  constructor(private readonly root: string) {}

  sandboxDir(id: string): string {
    return path.join(this.root, 'sandboxes', id);
  }

  containerDir(id: string): string {
    return path.join(this.root, 'containers', id);
  }

  readSandbox(id: string): Promise<SandboxRecord | undefined> {
    if (!/^[a-f0-9]{64}$/.test(id)) return Promise.resolve(undefined);
    return readJson<SandboxRecord>(path.join(this.sandboxDir(id), 'sandbox.json'));
  }

  writeSandbox(rec: SandboxRecord): Promise<void> {
    return writeJsonAtomic(path.join(this.sandboxDir(rec.id), 'sandbox.json'), rec);
  }

  readContainer(id: string): Promise<ContainerRecord | undefined> {
    if (!/^[a-f0-9]{64}$/.test(id)) return Promise.resolve(undefined);
    return readJson<ContainerRecord>(path.join(this.containerDir(id), 'container.json'));
  }

  writeContainer(rec: ContainerRecord): Promise<void> {
    return writeJsonAtomic(path.join(this.containerDir(rec.id), 'container.json'), rec);
  }

  /** Every container record under the root, in no order. */
  async containers(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const id of await listDir(path.join(this.root, 'containers'))) {
      const rec = await this.readContainer(id);
      if (rec) out.push(rec);
    }
    return out;
  }
}
