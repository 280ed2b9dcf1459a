import { test } from 'node:test';
import assert from 'node:assert/strict';

import { runtimeMessage } from './conmon.js';

test("runc's log lines lose their time and level, and their quoting", () => {
  const logged =
    'time="2026-12-05T20:12:20Z" level=error msg="runc create failed: unable to start container ' +
    'process: exec: \\"/no/such/binary\\": stat /no/such/binary: no such file or directory"\n';
  assert.equal(
    runtimeMessage(logged),
    'runc create failed: unable to start container process: exec: "/no/such/binary": ' +
      'stat /no/such/binary: no such file or directory',
  );
  // The same failure a second later reads the same.
  assert.equal(runtimeMessage(logged.replace('20:12:20', '20:12:31')), runtimeMessage(logged));
  assert.equal(
    runtimeMessage('time="t" level=warning msg="a \\\\ b"\nplain words\n\n'),
    'a \\ b; plain words',
  );
  assert.equal(runtimeMessage('\n'), 'no details');
});
