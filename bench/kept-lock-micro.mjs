// A continuous run with and without the kept lock: N x (3 spool() + qb.run({ upkeep: false }[, keepLockMs])), two rounds each.
// npm run build && node bench/kept-lock-micro.mjs [N]   (MariaDB at 127.0.0.1:3306, database test; table kept_lock_micro)
import { QueryBatch } from '../dist/index.js';
import mysql from 'mysql2/promise';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const url = 'mysql://root@127.0.0.1:3306/test';
const c = await mysql.createConnection(url);
await c.query('DROP TABLE IF EXISTS kept_lock_micro');
await c.query('CREATE TABLE kept_lock_micro (id INT AUTO_INCREMENT PRIMARY KEY, a INT)');
const home = mkdtempSync(join(tmpdir(), 'qb-kept-micro-'));
const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url } } });
const N = Number(process.argv[2] ?? 200);
const res = {};
for (const round of [1, 2]) for (const mode of ['fresh', 'kept']) {
  const opts = mode === 'kept' ? { upkeep: false, keepLockMs: 60000 } : { upkeep: false };
  const times = [];
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < 3; k++) await qb.spool('INSERT INTO kept_lock_micro (a) VALUES (?)', [i]);
    const t = performance.now();
    await qb.run(opts);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  res[`${mode}${round}`] = { mean: +(times.reduce((a, b) => a + b, 0) / N).toFixed(2), p50: +times[N >> 1].toFixed(2), p99: +times[Math.floor(N * 0.99)].toFixed(2) };
}
console.log(JSON.stringify(res));
await qb.close();
await c.query('DROP TABLE kept_lock_micro');
await c.end();
rmSync(home, { recursive: true, force: true });
