// Runs node's test runner over the compiled tests: unit tests beside the code
// (dist/src/**/*.test.js) and process tests (dist/test/**/*.test.js).
// Arguments narrow the run to folders under dist/ ("src", "test") or to single files.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const roots = process.argv.slice(2);
const files = [];
for (const root of roots.length > 0 ? roots : ['src', 'test']) {
  const path = root.startsWith('dist/') ? root : join('dist', root);
  if (statSync(path, { throwIfNoEntry: false })?.isFile()) files.push(path);
  else collect(path, files);
}
files.sort();
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
