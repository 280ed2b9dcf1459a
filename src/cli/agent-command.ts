import { homedir } from 'node:os';
import { join } from 'node:path';
import { HollowAgent } from '../agent/hollow.js';
import { parseQuantity } from '../api/quantity.js';
import { KubeClient } from '../client/rest.js';
import { componentLogger } from '../log.js';
import { loadKubeconfig } from './kubeconfig.js';

/**
 * `flyces agent --hollow N`: hollow nodes, which register and report pods Running without
 * starting containers, to load a control plane as a big cluster would. (Joining a real
 * machine, `flyces agent --server`, is join-agent.ts.)
 */

export interface AgentCommandOptions {
  hollow?: number;
  kubeconfig?: string;
  namePrefix: string;
  cpu: string;
  memory: string;
  maxPods: number;
}

/** Runs the hollow nodes until SIGINT or SIGTERM; throws without `--hollow`. */
export async function agentCommand(o: AgentCommandOptions): Promise<void> {
  if (o.hollow === undefined)
    throw new Error(
      'flyces agent needs --server URL --token TOKEN to join a cluster of `flyces server`, ' +
        'or --hollow N (a one-machine cluster is `flyces up`)',
    );
  for (const [flag, value] of [
    ['--cpu', o.cpu],
    ['--memory', o.memory],
  ]) {
    if (parseQuantity(value) === undefined) throw new Error(`${flag}: ${value} is not a quantity`);
  }
  const path = o.kubeconfig ?? process.env.KUBECONFIG ?? join(homedir(), '.flyces', 'kubeconfig');
  const client = new KubeClient({ ...loadKubeconfig(path), userAgent: 'flyces-hollow-agent' });
  const log = componentLogger('agent-command');
  const agent = new HollowAgent({
    client,
    count: o.hollow,
    namePrefix: o.namePrefix,
    cpu: o.cpu,
    memory: o.memory,
    maxPods: o.maxPods,
  });
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  try {
    const started = agent.start().then(() => {
      process.stderr.write(`${o.hollow} hollow nodes running; Ctrl-C stops them\n`);
    });
    await Promise.race([started, signalled]);
    log.info({ signal: await signalled }, 'stopping');
  } finally {
    await agent.stop();
    client.close();
  }
}
