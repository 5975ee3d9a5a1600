// SQL cost alone of the ways a job can be sent, on one connection (no spool files):
// autocommit prepared execute (the ledger-off path and the raw loop), the ledger's one-trip
// transaction, and, for comparison, 16 jobs per ledger transaction (group commit, not used).
// Usage: node scripts/ledger-micro.mjs [N=2000]
import mysql from 'mysql2/promise';
const N = Number(process.argv[2] ?? 2000);
const db = `qbmicro_${process.pid}`;
const c = await mysql.createConnection({ uri: process.env.QUERYBATCH_TEST_URL ?? 'mysql://root@127.0.0.1:3306/test', multipleStatements: true });
await c.query(`CREATE DATABASE ${db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
await c.query(`USE ${db}`);
await c.query('CREATE TABLE t (n INT AUTO_INCREMENT PRIMARY KEY, job INT, v VARCHAR(40))');
await c.query('CREATE TABLE l (id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, spool CHAR(24) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, done_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB');
let seq = 0;
const id = () => String(Date.now()).padStart(14, '0') + String(seq++).padStart(12, '0');
const one = (k) => `INSERT INTO l (id, spool) VALUES ('${id()}', 'abcdefabcdefabcdefabcdef'); INSERT INTO t (job, v) VALUES (${k}, 'value ${k}')`;
const ways = {
  autocommitExecute: async (k) => { await c.execute('INSERT INTO t (job, v) VALUES (?, ?)', [k, 'value ' + k]); return 1; },
  ledgerOneTrip: async (k) => { await c.query(`START TRANSACTION; ${one(k)}; COMMIT`); return 1; },
  ledgerGroupOf16: async (k) => { await c.query(`START TRANSACTION; ${Array.from({ length: 16 }, (_, j) => one(k + j)).join('; ')}; COMMIT`); return 16; },
};
const res = {};
try {
  for (let round = 0; round < 3; round++) {
    for (const [name, f] of Object.entries(ways)) {
      const t0 = performance.now();
      for (let k = 0; k < N; ) k += await f(k);
      (res[name] ??= []).push(Math.round(N / ((performance.now() - t0) / 1000)));
    }
  }
} finally {
  await c.query(`DROP DATABASE ${db}`);
  await c.end();
}
for (const [name, rates] of Object.entries(res)) console.log(`${name.padEnd(18)} ${rates.join(' ')} statements/s`);
