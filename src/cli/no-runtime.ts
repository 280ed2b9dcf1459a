import {
  RuntimeError,
  type ContainerStatus,
  type ExecResult,
  type ExecSession,
  type ImageInfo,
  type ImageService,
  type RuntimeService,
  type SandboxStatus,
} from '../runtime/runtime.js';

/**
 * The runtime of `flyces agent --no-runtime` (a hidden test flag): it has no containers and
 * no images, and refuses to make any. The agent still joins, registers its node, renews its
 * Lease and serves its endpoint, which is what the join tests need on machines (or in
 * processes) that must not create containers. Pods bound to such a node stay Pending with
 * a RunContainerError.
 */
export class NoRuntime implements RuntimeService, ImageService {
  private refuse(): never {
    throw new RuntimeError('RunContainerError', 'this agent runs without a container runtime');
  }

  async runSandbox(): Promise<SandboxStatus> {
    return this.refuse();
  }
  async stopSandbox(): Promise<void> {}
  async removeSandbox(): Promise<void> {}
  async listSandboxes(): Promise<SandboxStatus[]> {
    return [];
  }
  async createContainer(): Promise<string> {
    return this.refuse();
  }
  async startContainer(): Promise<void> {
    return this.refuse();
  }
  async stopContainer(): Promise<void> {}
  async removeContainer(): Promise<void> {}
  async listContainers(): Promise<ContainerStatus[]> {
    return [];
  }
  async containerStatus(): Promise<ContainerStatus | undefined> {
    return undefined;
  }
  async execSync(): Promise<ExecResult> {
    throw new RuntimeError('NotFound', 'no containers on this agent');
  }
  async execStream(): Promise<ExecSession> {
    throw new RuntimeError('NotFound', 'no containers on this agent');
  }
  async importArchive(): Promise<ImageInfo[]> {
    return this.refuse();
  }
  async getImage(): Promise<ImageInfo | undefined> {
    return undefined;
  }
  async listImages(): Promise<ImageInfo[]> {
    return [];
  }
  async removeImage(): Promise<void> {}
  async pullImage(): Promise<ImageInfo> {
    return this.refuse();
  }
}
