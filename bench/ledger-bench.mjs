// Drain rate with the ledger on and off against a raw mysql2 autocommit loop, same statement.
// Usage: npm run build && node scripts/ledger-bench.mjs [N=3000]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../dist/index.js';

const N = Number(process.argv[2] ?? 3000);
const ADMIN = process.env.QUERYBATCH_TEST_URL ?? 'mysql://root@127.0.0.1:3306/test';
const dbName = `qbbench_${process.pid}`;
const admin = await mysql.createConnection({ uri: ADMIN });
await admin.query(`CREATE DATABASE ${dbName} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
const url = ADMIN.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
const SQL = 'INSERT INTO t (job, v) VALUES (?, ?)';

async function raw() {
  await admin.query(`CREATE TABLE ${dbName}.t (n INT AUTO_INCREMENT PRIMARY KEY, job INT, v VARCHAR(40))`);
  const c = await mysql.createConnection({ uri: url });
  const t0 = performance.now();
  for (let k = 0; k < N; k++) await c.execute(SQL, [k, 'value ' + k]);
  const ms = performance.now() - t0;
  await c.end();
  await admin.query(`DROP TABLE ${dbName}.t`);
  return N / (ms / 1000);
}

async function drain(ledger) {
  await admin.query(`CREATE TABLE ${dbName}.t (n INT AUTO_INCREMENT PRIMARY KEY, job INT, v VARCHAR(40))`);
  const home = await mkdtemp(join(tmpdir(), 'qb-bench-'));
  const q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url, ledger } } });
  for (let k = 0; k < N; k++) await q.spool(SQL, [k, 'value ' + k]);
  const s = await q.run();
  await q.close();
  await rm(home, { recursive: true, force: true });
  await admin.query(`DROP TABLE ${dbName}.t`);
  if (s.success !== N) throw new Error(`expected ${N}, got ${JSON.stringify(s)}`);
  console.error(`ledger=${ledger} wallMs=${s.wallMs} sqlMs=${s.totalMs}`);
  return N / (s.wallMs / 1000);
}

const rows = [];
try {
  for (let round = 0; round < 2; round++) {
    rows.push({ raw: await raw(), ledger: await drain(true), noLedger: await drain(false) });
  }
} finally {
  await admin.query(`DROP DATABASE ${dbName}`);
  await admin.end();
}
for (const r of rows) {
  console.log(`raw autocommit loop ${r.raw.toFixed(0)}/s | drain, ledger on ${r.ledger.toFixed(0)}/s (${(r.ledger / r.raw).toFixed(2)}x) | ledger off ${r.noLedger.toFixed(0)}/s (${(r.noLedger / r.raw).toFixed(2)}x)`);
}
