// Where the time of a refused statement goes: spools N INSERTs that MariaDB refuses (a
// duplicate key), runs them with qb.run() (default config: ledger on, group commit 32), and
// prints the milliseconds per job spent in the session's and the claims' methods, wrapped
// with a timer. DIST (default ./dist) may point at another build, e.g. a clone of an older
// commit, to compare. `single` spools one job a file (no segments).
// Usage: npm run build && node bench/failure-times.mjs [N=1000] [single]
//   QB_BENCH_MYSQL (default mysql://root@127.0.0.1:3306), QB_BENCH_DB (default qbbench)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mysql from 'mysql2/promise';

const dist = resolve(process.env.DIST ?? join(import.meta.dirname, '..', 'dist'));
const n = Number(process.argv[2] ?? 1000);
const single = process.argv[3] === 'single';
const server = process.env.QB_BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306';
const database = process.env.QB_BENCH_DB ?? 'qbbench';
const table = 'bench_failure_times';
const { QueryBatch } = await import(join(dist, 'index.js'));
const { MysqlSession } = await import(join(dist, 'db/mysql/session.js'));
const { Claims } = await import(join(dist, 'run/claims.js'));
const { Logs } = await import(join(dist, 'ops/logs.js'));
const { DirSyncer } = await import(join(dist, 'spool/durable.js'));

const admin = await mysql.createConnection(server);
await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
await admin.query(`DROP TABLE IF EXISTS \`${database}\`.${table}`);
await admin.query(`CREATE TABLE \`${database}\`.${table} (id BIGINT PRIMARY KEY, a INT, b VARCHAR(64))`);
await admin.query(`INSERT INTO \`${database}\`.${table} VALUES (1, 0, 'seed')`);

const home = mkdtempSync(join(tmpdir(), 'qb-failure-times-'));
const config = { home, configFile: false, datasources: { main: { url: `${server}/${database}` } } };
const producer = new QueryBatch({ ...config, durability: 'none' });
let next = 0;
await Promise.all(Array.from({ length: single ? 1 : 32 }, async () => {
  while (next < n) {
    const i = next++;
    await producer.spool(`INSERT INTO ${table} (id, a, b) VALUES (1, ?, ?)`, [i, `row-${i}`]);
  }
}));
await producer.close();

const spent = new Map();
function wrap(proto, name, label) {
  const original = proto[name];
  if (typeof original !== 'function') return; // not in this build
  proto[name] = function (...args) {
    const t0 = performance.now();
    const done = () => {
      const entry = spent.get(label) ?? { ms: 0, calls: 0 };
      entry.ms += performance.now() - t0;
      entry.calls++;
      spent.set(label, entry);
    };
    const result = original.apply(this, args);
    if (result && typeof result.then === 'function') return result.finally(done);
    done();
    return result;
  };
}
for (const m of ['executeOnce', 'executeBatch', 'executeEach']) wrap(MysqlSession.prototype, m, `session.${m}`);
for (const m of ['take', 'read', 'remove', 'placeFailed', 'failAlone', 'shrink', 'rewrite', 'moveToFailed', 'placeRefused']) wrap(Claims.prototype, m, `claims.${m}`);
wrap(Logs.prototype, 'failure', 'logs.failure');
wrap(DirSyncer.prototype, 'sync', 'directory fsync');

const qb = new QueryBatch(config);
const t0 = performance.now();
const summary = await qb.run();
const ms = performance.now() - t0;
await qb.close();
await admin.query(`DROP TABLE \`${database}\`.${table}`);
await admin.end();
rmSync(home, { recursive: true, force: true });
if (summary.sqlFailed !== n) throw new Error(`Expected ${n} refused statements; the run counted ${summary.sqlFailed}`);
console.log(`${n} refused jobs (${single ? 'one a file' : 'segments'}), ${dist}: ${(ms / n).toFixed(2)} ms each, ${Math.round((n * 1000) / ms)}/s`);
for (const [label, { ms: total, calls }] of spent) console.log(`  ${label.padEnd(24)} ${String(calls).padStart(6)} calls  ${(total / n).toFixed(3)} ms per job`);
