// The one-trip ledger transaction (MysqlDriver.executeOnce, no runner) against a raw mysql2
// autocommit loop in the same process, with the file work a drain does around each job:
//   none    no file work (the SQL alone)
//   sync    claim rename + read before each job, unlink after it (one job at a time)
//   burst   the same renames and unlinks done 32 at a time, the read per job
//   unlink  an unlink in the thread pool while each COMMIT is in flight
//   append  an appendFile in the thread pool while each COMMIT is in flight
// Usage: npm run build && node bench/drain-micro.mjs [mode=none] [N=3000]   (three rounds)
import fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { MysqlDriver } from '../dist/db/mysql/driver.js';

const mode = process.argv[2] ?? 'none';
const N = Number(process.argv[3] ?? 3000);
const url = process.env.QUERYBATCH_TEST_URL ?? 'mysql://root@127.0.0.1:3306/test';
const spool = 'drainmicro' + String(process.pid).padStart(14, '0');
const dir = mkdtempSync(join(tmpdir(), 'qb-drain-micro-'));
const c = await mysql.createConnection({ uri: url });
await c.query('DROP TABLE IF EXISTS qb_drain_micro');
await c.query('CREATE TABLE qb_drain_micro (n INT AUTO_INCREMENT PRIMARY KEY, a INT, b VARCHAR(40))');
const driver = new MysqlDriver({ url, home: process.cwd(), init: [], options: {}, ledger: { table: 'querybatch_ledger', spool } });
const session = await driver.connect();
let seq = 0;
const id = () => '01K' + String(Date.now()).padStart(13, '0') + String(seq++).padStart(10, '0');
const file = (k) => join(dir, String(k));
const claimed = (k) => join(dir, 'c' + k);
try {
  for (let round = 0; round < 3; round++) {
    for (let k = 0; k < N; k++) fs.writeFileSync(file(k), 'x'.repeat(300));
    let pending = Promise.resolve();
    let t0 = performance.now();
    for (let k = 0; k < N; k++) {
      if (mode === 'burst' && k % 32 === 0) {
        for (let j = k; j < Math.min(N, k + 32); j++) fs.renameSync(file(j), claimed(j));
        if (k > 0) for (let j = k - 32; j < k; j++) fs.unlinkSync(claimed(j));
      }
      if (mode === 'sync') fs.renameSync(file(k), claimed(k));
      if (mode === 'sync' || mode === 'burst') fs.readFileSync(claimed(k));
      const statement = session.executeOnce(id(), 'INSERT INTO qb_drain_micro (a, b) VALUES (?, ?)', [k, 'x' + k]);
      if (mode === 'unlink') {
        await pending;
        pending = fs.promises.unlink(file(k));
      }
      if (mode === 'append') await Promise.all([statement, fs.promises.appendFile(join(dir, 'out'), `line ${k}\n`)]);
      await statement;
      if (mode === 'sync') fs.unlinkSync(claimed(k));
    }
    await pending;
    const ledger = N / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let k = 0; k < N; k++) await c.execute('INSERT INTO qb_drain_micro (a, b) VALUES (?, ?)', [k, 'x' + k]);
    const raw = N / ((performance.now() - t0) / 1000);
    console.log(`${mode}: one-trip ledger transaction ${ledger.toFixed(0)}/s, raw autocommit ${raw.toFixed(0)}/s, ratio ${(ledger / raw).toFixed(2)}`);
    for (const name of fs.readdirSync(dir)) fs.rmSync(join(dir, name), { force: true });
  }
} finally {
  await c.query('DELETE FROM querybatch_ledger WHERE spool = ?', [spool]).catch(() => {});
  await c.query('DROP TABLE IF EXISTS qb_drain_micro');
  session.release();
  await driver.close();
  await c.end();
  fs.rmSync(dir, { recursive: true, force: true });
}
