import { Command, InvalidArgumentError, Option } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { thresholdProblem } from '../agent/image-gc.js';

/**
 * The `flyces` command. Each subcommand loads its module when it runs, so a client command
 * does not pay for loading the whole control plane.
 */

const clientCommands = () => import('./client-commands.js');
const nodeCommands = () => import('./node-commands.js');

const DEFAULT_DATA_DIR = join(homedir(), '.flyces');

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`${value} is not a port number`);
  return n;
}

function percent(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100)
    throw new InvalidArgumentError(`${value} is not a whole percent from 0 to 100`);
  return n;
}

/** The image GC thresholds of an `up` or `agent` command line, checked as kubelet does. */
function imageGc(o: { imageGcHighThreshold: number; imageGcLowThreshold: number }) {
  const problem = thresholdProblem(o.imageGcHighThreshold, o.imageGcLowThreshold);
  if (problem) throw new InvalidArgumentError(problem);
  return { highPercent: o.imageGcHighThreshold, lowPercent: o.imageGcLowThreshold };
}

/** kubelet's image GC flags, with its defaults. */
function addImageGcOptions(command: Command): Command {
  return command
    .option(
      '--image-gc-high-threshold <percent>',
      'disk usage at which unused images are removed (100: never)',
      percent,
      85,
    )
    .option('--image-gc-low-threshold <percent>', 'disk usage image GC stops at', percent, 80);
}

const program = new Command('flyces')
  .description('flyCes: a container orchestration engine that speaks the Kubernetes API')
  .version('0.1.0');

const up = program
  .command('up')
  .description('start an all-in-one cluster on this machine (foreground, until Ctrl-C)')
  .option('--data-dir <dir>', 'where the cluster keeps its state', DEFAULT_DATA_DIR)
  .option('--port <port>', 'API server port', port, 6443)
  .option('--bind-address <addr>', 'address the API server listens on', '127.0.0.1')
  .option('--agent-port <port>', "node agent's port (logs)", port, 10250)
  .option('--node-name <name>', 'name of this node (default: the host name)')
  .option('--pod-cidr <cidr>', "this node's pod address range", '10.42.0.0/24')
  .option('--bridge <name>', 'Linux bridge the pods attach to', 'flyces0')
  .option('--service-cidr <cidr>', 'the range Service cluster IPs come from', '10.43.0.0/16')
  .option(
    '--advertise-address <ip>',
    'address pods reach the API server on (the kubernetes Service endpoints)',
  )
  .option('--allow-host-path', 'let pods mount paths of this machine (hostPath volumes)', false)
  .option('--allow-privileged', 'let pods run privileged containers', false)
  .option(
    '--no-agent',
    'run only the control plane, with no node on this machine (no root or runc ' +
      'needed); pods wait for nodes that join, e.g. `flyces agent --hollow N`',
  );
addImageGcOptions(up).action(async (o) =>
  (await import('./up.js')).up({
    dataDir: o.dataDir,
    port: o.port,
    bindAddress: o.bindAddress,
    agentPort: o.agentPort,
    nodeName: o.nodeName,
    podCidr: o.podCidr,
    bridge: o.bridge,
    serviceCidr: o.serviceCidr,
    advertiseAddress: o.advertiseAddress,
    allowHostPath: o.allowHostPath,
    allowPrivileged: o.allowPrivileged,
    noAgent: o.agent === false,
    imageGc: imageGc(o),
  }),
);

program
  .command('server')
  .description('run the control plane without a node agent; machines join with flyces agent')
  .option('--data-dir <dir>', 'where the server keeps its state', DEFAULT_DATA_DIR)
  .option('--port <port>', 'API server port', port, 6443)
  .option('--bind-address <addr>', 'address the API server listens on (default: all)')
  .option('--etcd <urls>', 'comma-separated etcd client URLs (default: embedded SQLite)')
  .option('--advertise-address <addr>', 'address other machines reach this server at')
  .option('--node-cert-lifetime <seconds>', 'lifetime of node certificates', count, 31_536_000)
  .option('--cluster-cidr <cidr>', 'the range node pod ranges are cut from', '10.42.0.0/16')
  .option('--service-cidr <cidr>', 'the range Service cluster IPs come from', '10.43.0.0/16')
  .addOption(
    new Option('--leader-lease <seconds>', 'leader lease duration (tests)')
      .argParser(count)
      .hideHelp(),
  )
  .action(async (o) =>
    (await import('./server.js')).serverCommand({
      clusterCidr: o.clusterCidr,
      serviceCidr: o.serviceCidr,
      leaseSeconds: o.leaderLease,
      dataDir: o.dataDir,
      port: o.port,
      bindAddress: o.bindAddress,
      etcd: o.etcd,
      advertiseAddress: o.advertiseAddress,
      nodeCertSeconds: o.nodeCertLifetime,
    }),
  );

program
  .command('down')
  .description("stop and remove every pod container and network namespace of this node's data dir")
  .option('--data-dir <dir>', 'the data dir of the cluster', DEFAULT_DATA_DIR)
  .option(
    '--bridge <name>',
    'Linux bridge the pods attach to (default: the one flyces up noted in the data dir, else flyces0)',
  )
  .action(async (o) => (await nodeCommands()).downCommand(o.dataDir, o.bridge));

const image = program.command('image').description("manage the node's image store");
image
  .command('import')
  .description(
    'import the images of an OCI archive (skopeo copy ... oci-archive:FILE, podman save --format oci-archive)',
  )
  .argument('<file>', 'the OCI archive')
  .option('--data-dir <dir>', 'the data dir of the cluster', DEFAULT_DATA_DIR)
  .option('--name <ref>', 'store the image under this reference instead of the name in the archive')
  .action(async (file, o) => (await nodeCommands()).imageImportCommand(file, o.dataDir, o.name));
image
  .command('pull')
  .description("pull an image into the node's store (registries.yaml in the data dir applies)")
  .argument('<ref>', 'image reference, e.g. 127.0.0.1:5000/web:1')
  .option('--data-dir <dir>', 'the data dir of the cluster', DEFAULT_DATA_DIR)
  .action(async (ref, o) => (await nodeCommands()).imagePullCommand(ref, o.dataDir));
image
  .command('ls')
  .description('list the images in the store')
  .option('--data-dir <dir>', 'the data dir of the cluster', DEFAULT_DATA_DIR)
  .action(async (o) => (await nodeCommands()).imageListCommand(o.dataDir));

const clientOptions = (cmd: Command) =>
  cmd
    .option('--kubeconfig <file>', 'kubeconfig (default $KUBECONFIG or ~/.flyces/kubeconfig)')
    .option('-n, --namespace <ns>', 'namespace');

clientOptions(program.command('apply').description('create or update objects from a manifest'))
  .requiredOption('-f, --filename <file>', 'manifest file (YAML or JSON, - for stdin)')
  .action(async (o) => (await clientCommands()).applyCommand(o.filename, o));

clientOptions(program.command('get').description('list objects as kubectl does'))
  .argument('<args...>', 'RESOURCE [NAME]')
  .option('-o, --output <format>', 'wide, yaml or json')
  .option('-A, --all-namespaces', 'list across all namespaces')
  .option('-l, --selector <selector>', 'label selector')
  .action(async (args, o) => (await clientCommands()).getCommand(args, o));

clientOptions(program.command('delete').description('delete objects'))
  .argument('[args...]', 'RESOURCE NAME...')
  .option('-f, --filename <file>', 'manifest naming the objects')
  .action(async (args, o) => (await clientCommands()).deleteCommand(args, o.filename, o));

clientOptions(program.command('logs').description("print a pod container's output"))
  .argument('<pod>', 'pod name')
  .option('-c, --container <name>', 'container name')
  .option('-f, --follow', 'keep streaming new output')
  .option('--tail <lines>', 'only the last lines')
  .option('-p, --previous', 'the previous instance of the container')
  .option('--timestamps', 'prefix each line with its time')
  .action(async (pod, o) => (await clientCommands()).logsCommand(pod, o));

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${value} is not a count`);
  return n;
}

const agent = program
  .command('agent')
  .description(
    'join this machine to a cluster (--server URL --token TOKEN), or run hollow nodes (--hollow N)',
  )
  .option('--server <url>', 'API server to join, e.g. https://10.0.0.1:6443')
  .option('--token <token>', "join token (the server's DATA_DIR/join-token); once joined, unneeded")
  .option('--node-name <name>', 'name of this node (default: the host name)')
  .option('--data-dir <dir>', 'where the agent keeps its state', DEFAULT_DATA_DIR)
  .option('--node-ip <addr>', "this node's address (default: its first non-loopback IPv4)")
  .option('--pod-cidr <cidr>', "this node's pod range (default: assigned by the cluster)")
  .option('--cluster-cidr <cidr>', "the cluster's pod range (default: the server's)")
  .option('--agent-port <port>', "node agent's port (logs, exec)", port, 10250)
  .option('--bridge <name>', 'Linux bridge the pods attach to', 'flyces0')
  .option('--allow-host-path', 'let pods mount paths of this machine (hostPath volumes)', false)
  .option('--allow-privileged', 'let pods run privileged containers', false)
  .addOption(new Option('--no-runtime', 'run no containers (tests)').hideHelp())
  .option('--hollow <n>', 'how many hollow nodes to run', count)
  .option('--kubeconfig <file>', 'kubeconfig (default $KUBECONFIG or ~/.flyces/kubeconfig)')
  .option('--name-prefix <prefix>', 'node names are PREFIX0 … PREFIX(N-1)', 'hollow-')
  .option('--cpu <quantity>', 'cpu capacity of each node', '4')
  .option('--memory <quantity>', 'memory capacity of each node', '16Gi')
  .option('--max-pods <n>', 'pod capacity of each node', count, 110);
addImageGcOptions(agent).action(async (o) => {
  if (o.server === undefined) return (await import('./agent-command.js')).agentCommand(o);
  await (
    await import('./join-agent.js')
  ).joinAgentCommand({
    server: o.server,
    token: o.token,
    nodeName: o.nodeName,
    dataDir: o.dataDir,
    nodeIp: o.nodeIp,
    podCidr: o.podCidr,
    clusterCidr: o.clusterCidr,
    agentPort: o.agentPort,
    bridge: o.bridge,
    runtime: o.runtime,
    allowHostPath: o.allowHostPath,
    allowPrivileged: o.allowPrivileged,
    imageGc: imageGc(o),
  });
});

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
