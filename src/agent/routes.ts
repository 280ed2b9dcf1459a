import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { NodeObject } from '../api/types.js';
import type { Logger } from '../log.js';

const run = promisify(execFile);

/**
 * Routes to the other nodes' pods: for every other node with a pod range and an
 * InternalIP, `<podCIDR> via <InternalIP>` in this machine's routing table, so that a pod
 * reaches a pod on any node by its IP without an overlay. The routes carry a protocol
 * number of flyCes' own, so the agent finds and removes exactly the ones it made (also
 * ones left by an earlier run) and touches no other route.
 *
 * This needs the nodes on one link (or routers that know the pod ranges), and IP
 * forwarding on every node; the agent turns it on when it routes.
 */

/** The routing protocol number marking flyCes' routes (unassigned in rt_protos). */
export const ROUTE_PROTO = '177';

export interface PodRoute {
  cidr: string;
  via: string;
}

/** The routes this node wants: one per other node that has a pod range and an address. */
export function wantedRoutes(self: string, nodes: NodeObject[]): PodRoute[] {
  const routes: PodRoute[] = [];
  for (const node of nodes) {
    if (node.metadata.name === self) continue;
    const cidr = node.spec?.podCIDR;
    const via = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    if (!cidr || !via || !/^[\d.]+\/\d+$/.test(cidr) || !/^[\d.]+$/.test(via)) continue;
    routes.push({ cidr, via });
  }
  return routes.sort((a, b) => a.cidr.localeCompare(b.cidr));
}

/** What `ip` does for the route manager; replaced in tests. */
export interface RouteTable {
  list(): Promise<PodRoute[]>;
  replace(route: PodRoute): Promise<void>;
  remove(cidr: string): Promise<void>;
}

/** The machine's main routing table, through iproute2. */
export const ipRouteTable: RouteTable = {
  async list() {
    const { stdout } = await run('ip', ['-j', 'route', 'show', 'proto', ROUTE_PROTO]);
    const rows = JSON.parse(stdout || '[]') as { dst?: string; gateway?: string }[];
    return rows.filter((r) => r.dst && r.gateway).map((r) => ({ cidr: r.dst!, via: r.gateway! }));
  },
  async replace(route) {
    await run('ip', ['route', 'replace', route.cidr, 'via', route.via, 'proto', ROUTE_PROTO]);
  },
  async remove(cidr) {
    await run('ip', ['route', 'del', cidr, 'proto', ROUTE_PROTO]);
  },
};

/**
 * Keeps the routing table's flyCes routes equal to the wanted ones. sync() is safe to call
 * often and concurrently: calls are run one after another, and each compares the table as
 * it is with what the nodes call for.
 */
export class RouteManager {
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly self: string,
    private readonly log: Logger,
    private readonly table: RouteTable = ipRouteTable,
  ) {}

  sync(nodes: NodeObject[]): Promise<void> {
    const wanted = wantedRoutes(this.self, nodes);
    this.running = this.running
      .then(() => this.apply(wanted))
      .catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'pod routes not synced');
      });
    return this.running;
  }

  /** Removes every route this agent made. */
  async clear(): Promise<void> {
    await this.running;
    for (const route of await this.table.list()) await this.table.remove(route.cidr);
  }

  private async apply(wanted: PodRoute[]): Promise<void> {
    const current = await this.table.list();
    for (const route of current) {
      if (!wanted.some((w) => w.cidr === route.cidr)) {
        await this.table.remove(route.cidr);
        this.log.info({ cidr: route.cidr }, 'removed pod route');
      }
    }
    for (const route of wanted) {
      const now = current.find((c) => c.cidr === route.cidr);
      if (now?.via === route.via) continue;
      await this.table.replace(route);
      this.log.info({ cidr: route.cidr, via: route.via }, 'pod route set');
    }
  }
}
