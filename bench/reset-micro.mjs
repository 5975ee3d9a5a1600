// The cost of a session reset (issue 12): 1,000 jobs that change the session (SET @x = ?, each
// followed by a reset) against 1,000 that do not (DO ?), per-statement mode, in one process.
// Run with `node bench/reset-micro.mjs` after `npm run build`; needs MariaDB at 127.0.0.1:3306.
import { QueryBatch } from '../dist/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const N = 1000;
async function time(sqlOf, label) {
  const home = mkdtempSync(join(tmpdir(), 'qb-reset-'));
  const q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url: 'mysql://root@127.0.0.1:3306/test', ledger: { batch: 1 } } } });
  for (let i = 0; i < N; i++) await q.spool(sqlOf(i), [i]);
  const t = performance.now();
  const s = await q.run();
  const ms = performance.now() - t;
  await q.close(); rmSync(home, { recursive: true, force: true });
  console.log(label, Math.round(N / (ms / 1000)), 'jobs/s', s.success);
}
for (let r = 0; r < 3; r++) {
  await time(() => 'DO ?', 'DO ? (no reset)    ');
  await time(() => 'SET @x = ?', 'SET @x = ? (reset) ');
}
