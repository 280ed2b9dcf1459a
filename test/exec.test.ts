import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';

import { loadKubeconfig } from '../src/cli/kubeconfig.js';
import { TestCluster, waitFor } from './helpers/cluster.js';

/**
 * `kubectl exec` end to end: the real kubectl speaks the WebSocket exec protocol to the API
 * server, which proxies it to the agent, which runs `runc exec` in a real container.
 */

const run = promisify(execFile);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

describe('kubectl exec runs commands in containers', { timeout: 600_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.205.0/24',
    bridge: 'flycesexe0',
    port: 16943,
    agentPort: 16950,
  });

  /** Runs kubectl with `input` on its stdin; resolves with how it ended. */
  function kubectl(args: string[], input?: string): Promise<Outcome> {
    const child = spawn('kubectl', ['--kubeconfig', cluster.kubeconfig, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    return new Promise((resolve) => {
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({
          code: code ?? -1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
    });
  }

  function podManifest(name: string, containers: string[]): string {
    const file = join(cluster.dataDir, `${name}.json`);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 1,
        // Only the first container serves; two httpds would fight over port 8080.
        containers: containers.map((c, i) => ({
          name: c,
          image: 'localhost/flyces-web:1',
          imagePullPolicy: 'Never',
          ...(i > 0 ? { command: ['sh', '-c', 'trap "exit 0" TERM; sleep 1000000 & wait'] } : {}),
        })),
      },
    };
    writeFileSync(file, JSON.stringify(pod));
    return file;
  }

  before(async () => {
    await cluster.start();
    await cluster.importWebImage();
    await cluster.kubectl('apply', '-f', podManifest('box', ['c']));
    await cluster.kubectl('apply', '-f', podManifest('pair', ['a', 'b']));
    await waitFor('pods Running', 60_000, async () => {
      const out = await cluster.kubectl('get', 'pods', '--no-headers');
      return /box\s+1\/1\s+Running/.test(out) && /pair\s+2\/2\s+Running/.test(out);
    });
  });

  after(async () => {
    await cluster.destroy();
    await run('ip', ['link', 'del', 'flycesexe0']).catch(() => undefined);
  });

  test('output and a zero exit code', async () => {
    const r = await kubectl(['exec', 'box', '--', 'echo', 'hello']);
    assert.equal(r.stdout, 'hello\n', r.stderr);
    assert.equal(r.code, 0);
  });

  test('a non-zero exit code becomes kubectl’s', async () => {
    const r = await kubectl(['exec', 'box', '--', 'sh', '-c', 'exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /command terminated with exit code 3/);
  });

  test('stderr stays apart from stdout', async () => {
    const r = await kubectl(['exec', 'box', '--', 'sh', '-c', 'echo out; echo err >&2']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('stdin is piped through and its end closes the command’s stdin', async () => {
    const r = await kubectl(['exec', '-i', 'box', '--', 'cat'], 'data\nmore\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'data\nmore\n');
    const wc = await kubectl(['exec', '-i', 'box', '--', 'wc', '-c'], 'x'.repeat(300_000));
    assert.equal(wc.stdout.trim(), '300000');
  });

  test('five megabytes of output arrive complete', async () => {
    const cmd = "head -c 5000000 /dev/zero | tr '\\0' a";
    const r = await kubectl(['exec', 'box', '--', 'sh', '-c', cmd]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 5_000_000);
    assert.match(r.stdout, /^a+$/);
  });

  test('the container is chosen with -c; kubectl defaults to the first', async () => {
    const b = await kubectl(['exec', 'pair', '-c', 'b', '--', 'hostname']);
    assert.equal(b.stdout.trim(), 'pair', b.stderr);
    const d = await kubectl(['exec', 'pair', '--', 'true']);
    assert.equal(d.code, 0);
    assert.match(d.stderr, /Defaulted container "a" out of: a, b/);
    const bad = await kubectl(['exec', 'pair', '-c', 'zz', '--', 'true']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /container zz is not valid for pod pair/);
  });

  test('without a container name the API server names the choices', async () => {
    const res = await rawExec('/api/v1/namespaces/default/pods/pair/exec?command=true&stdout=1');
    assert.equal(res.status, 400);
    assert.match(
      res.body,
      /a container name must be specified for pod pair, choose one of: \[a b\]/,
    );
    const anon = await rawExec('/api/v1/namespaces/default/pods/box/exec?command=true', 'no');
    assert.equal(anon.status, 401);
  });

  test('a missing pod is NotFound', async () => {
    const r = await kubectl(['exec', 'ghost', '--', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pods "ghost" not found/);
  });

  test('a command that does not exist fails with runc’s reason', async () => {
    const r = await kubectl(['exec', 'box', '--', 'nope']);
    assert.equal(r.code, 127, r.stderr);
    assert.match(r.stderr, /executable file not found in \$PATH/);
  });

  test('a terminal of the client’s size, and TERM=xterm, are given with -t', async () => {
    // kubectl only asks for a terminal when its own stdin is one; script gives it one.
    const line =
      'stty cols 100 rows 30; ' +
      `kubectl --kubeconfig ${cluster.kubeconfig} exec -it box -- sh -c 'stty size; tty; echo "TERM=$TERM"; exit 4'`;
    const r = await new Promise<Outcome>((resolve) => {
      execFile('script', ['-q', '-e', '-c', line, '/dev/null'], (err, stdout, stderr) => {
        const code = (err as { code?: number } | null)?.code ?? 0;
        resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
      }).stdin!.end();
    });
    // script turns the end of its input into bytes kubectl passes on; the container's
    // terminal echoes them as ^@ wherever they land among the output.
    const shown = r.stdout.replace(/\^@/g, '');
    assert.match(shown, /30 100\r\n\/dev\/pts\/\d+\r\nTERM=xterm\r\n/, r.stdout + r.stderr);
    assert.equal(r.code, 4);
  });

  /** Writes a pod of `containers` (web image, grace 1 s) to a file and applies it. */
  async function applyPod(
    name: string,
    containers: Record<string, unknown>[],
    restartPolicy = 'Always',
  ): Promise<void> {
    const file = join(cluster.dataDir, `${name}.json`);
    const spec = {
      terminationGracePeriodSeconds: 1,
      restartPolicy,
      containers: containers.map((c) => ({
        image: 'localhost/flyces-web:1',
        imagePullPolicy: 'Never',
        ...c,
      })),
    };
    writeFileSync(
      file,
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec }),
    );
    await cluster.kubectl('apply', '-f', file);
  }

  /** Runs `line` in a shell on a terminal (script), typing `typed` into it after `delayMs`. */
  function onTerminal(line: string, typed: string, delayMs: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const child = execFile(
        'script',
        ['-q', '-e', '-c', line, '/dev/null'],
        { timeout: 60_000 },
        (err, stdout, stderr) => {
          const code = (err as { code?: number } | null)?.code ?? 0;
          resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
        },
      );
      setTimeout(() => child.stdin!.write(typed), delayMs);
    });
  }

  test('stdin and tty keep a shell waiting as on Kubernetes', async () => {
    await applyPod('shell', [
      // Without a stdin held open, sh reads end-of-file and exits at once.
      { name: 'sh', command: ['sh'], stdin: true, tty: true },
      {
        name: 'reader',
        command: ['sh', '-c', 'cat; echo cat-ended'],
        stdin: true,
        stdinOnce: true,
      },
    ]);
    await waitFor('the shell pod Running', 60_000, async () =>
      /shell\s+2\/2\s+Running\s+0\s/.test(
        await cluster.kubectl('get', 'pod', 'shell', '--no-headers'),
      ),
    );
    // Still so a while later: neither container ended and was restarted.
    await new Promise((r) => setTimeout(r, 3000));
    const row = await cluster.kubectl('get', 'pod', 'shell', '--no-headers');
    assert.match(row, /shell\s+2\/2\s+Running\s+0\s/, row);

    const onTty = await kubectl([
      'exec',
      'shell',
      '-c',
      'sh',
      '--',
      'sh',
      '-c',
      'tty < /proc/1/fd/0',
    ]);
    assert.match(onTty.stdout, /^\/dev\/pts\/\d+\n$/, onTty.stderr);
    const fd0 = 'readlink /proc/1/fd/0';
    const piped = await kubectl(['exec', 'shell', '-c', 'reader', '--', 'sh', '-c', fd0]);
    assert.match(piped.stdout, /^pipe:\[\d+\]\n$/, piped.stderr);
    // A container that asks for neither reads /dev/null, as before.
    const plain = await kubectl(['exec', 'box', '--', 'sh', '-c', fd0]);
    assert.equal(plain.stdout, '/dev/null\n', plain.stderr);
    const logs = await cluster.kubectl('logs', 'shell', '-c', 'reader');
    assert.doesNotMatch(logs, /cat-ended/);
  });

  test('kubectl attach -i feeds a stdinOnce container, whose stdin closes when it detaches', async () => {
    // The shell pod's reader: cat echoes what comes, then its stdin ends with the session.
    const r = await kubectl(['attach', '-i', 'shell', '-c', 'reader'], 'hello\nworld\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello\nworld\ncat-ended\n/, r.stdout + r.stderr);
    await waitFor('the reader restarted', 30_000, async () =>
      /shell\s+\S+\s+\S+\s+1\s/.test(await cluster.kubectl('get', 'pod', 'shell', '--no-headers')),
    );
    // Attaching without -i shows output only; with -i to a container without stdin, a reason.
    const noStdin = await kubectl(['attach', '-i', 'box']);
    assert.notEqual(noStdin.code, 0);
    assert.match(noStdin.stderr, /has no stdin to attach to/, noStdin.stderr);
  });

  test('kubectl attach -it reaches a shell on its terminal, of the client’s size', async () => {
    const line =
      'stty cols 100 rows 30; ' +
      `kubectl --kubeconfig ${cluster.kubeconfig} attach -it shell -c sh`;
    const r = await onTerminal(line, 'stty size; echo "sum-$((20+22))"; exit\r', 3000);
    // The shell's own echo of the line comes first; its output after.
    assert.match(r.stdout, /30 100\r\nsum-42\r\n/, r.stdout + r.stderr);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await cluster.kubectl('delete', 'pod', 'shell', '--wait=false');
  });

  test('kubectl run -i --rm runs a command fed from stdin and removes its pod', async () => {
    const r = await kubectl(
      [
        'run',
        'runner',
        '-i',
        '--rm',
        '--restart=Never',
        '--image=localhost/flyces-web:1',
        '--image-pull-policy=Never',
        // The image has an entrypoint: without --command these would be its arguments.
        '--command',
        '--',
        'sh',
        '-c',
        'read x; echo "got-$x"; echo to-stderr >&2',
      ],
      'abc\n',
    );
    assert.match(r.stdout, /got-abc\n/, r.stdout + r.stderr);
    assert.match(r.stderr, /to-stderr/, r.stderr);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await waitFor(
      'the runner pod gone',
      30_000,
      async () => !(await cluster.kubectl('get', 'pods', '--no-headers')).includes('runner'),
    );
  });

  /** An exec handshake made by hand, for what kubectl checks before asking. */
  function rawExec(path: string, token?: string): Promise<{ status: number; body: string }> {
    const config = loadKubeconfig(cluster.kubeconfig);
    const url = config.server.replace(/^https/, 'wss') + path;
    const ws = new WebSocket(url, ['v5.channel.k8s.io'], {
      ca: config.caPem,
      headers: { Authorization: `Bearer ${token ?? config.token}` },
    });
    return new Promise((resolve, reject) => {
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on('open', () => {
        ws.close();
        reject(new Error('the exec was accepted'));
      });
      ws.on('error', () => undefined);
    });
  }
});
