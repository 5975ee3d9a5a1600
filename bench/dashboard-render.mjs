/* global fetch */
// What the dashboard's pages cost to render on a big home (issue 14): 100,000 pending jobs
// (two datasources) and 10,000 files in failed/. Builds the home with the library's writer
// (the failed files: jobs spooled on datasource f, then renamed into failed/ as
// failed-<id>.batchsql, what a run would do at ~20 ms a failure), serves the dashboard in
// this process, then times N sequential requests of each page: median and p95.
//
//   npm run bench:dashboard                      100,000 pending, 10,000 failed, 20 requests each
//   node bench/dashboard-render.mjs [PENDING] [FAILED] [N]     (after npm run build)
//
// Needs MariaDB at 127.0.0.1:3306 (root, no password; QUERYBATCH_TEST_URL to change): the
// database qbbench_console is created and dropped. The home is in the temp dir, removed at the end.
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../dist/index.js';

const PENDING = Number(process.argv[2] ?? 100_000);
const FAILED = Number(process.argv[3] ?? 10_000);
const N = Number(process.argv[4] ?? 20);
const ADMIN = process.env.QUERYBATCH_TEST_URL ?? 'mysql://root@127.0.0.1:3306/test';
const DB = 'qbbench_console';
const url = ADMIN.replace(/\/[^/]*$/, `/${DB}`);

/** `count` calls of `fn`, `width` at a time. */
async function concurrently(count, width, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) {
      next++;
      await fn();
    }
  }));
}

const ms = (t0) => performance.now() - t0;
const fmt = (x) => (x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US'));

const admin = await mysql.createConnection({ uri: ADMIN });
await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
await admin.query(`CREATE DATABASE ${DB}`);
const home = await mkdtemp(join(tmpdir(), 'qb-dashbench-'));
const datasources = { a: { url, ledger: false }, b: { url, ledger: false }, f: { url, ledger: false } };
try {
  // failed/: FAILED jobs on a missing table, spooled on f and moved to failed/ (one file each: the ledger is off).
  let t0 = performance.now();
  const filler = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { f: datasources.f } });
  await concurrently(FAILED, 64, () => filler.spool('INSERT INTO no_such_table (id) VALUES (?)', [1]));
  await filler.close();
  await mkdir(join(home, 'failed'), { recursive: true });
  let moved = 0;
  for (const e of await readdir(join(home, 'spool', 'f'), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.batchsql')) continue;
    await rename(join(e.parentPath, e.name), join(home, 'failed', `failed-${e.name}`));
    moved++;
  }
  console.log(`failed/: ${moved} files (${fmt(ms(t0) / 1000)} s)`);

  // PENDING jobs, half on a, half on b.
  t0 = performance.now();
  const qb = new QueryBatch({ home, configFile: false, durability: 'none', datasources });
  await concurrently(PENDING, 64, (() => {
    let i = 0;
    return () => qb.spool('DO 1', [], { datasource: i++ % 2 === 0 ? 'a' : 'b' });
  })());
  console.log(`spool: ${PENDING} pending jobs written (${fmt(ms(t0) / 1000)} s)`);

  // metricsCacheMs 0: every request walks the spool (the default 2 s cache would hide it).
  const server = await qb.serveDashboard({ port: 0, metricsCacheMs: 0, runMetrics: false });
  const pages = ['', 'api/overview', 'failed', 'failed?page=50', 'failed?datasource=f', 'metrics', 'logs'];
  const rows = [];
  for (const path of pages) {
    const times = [];
    let bytes = 0;
    for (let i = 0; i <= N; i++) {
      const t = performance.now();
      const res = await fetch(server.url + path);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${body.slice(0, 200)}`);
      if (i > 0) times.push(ms(t)); // the first warms up
      bytes = body.length;
    }
    times.sort((x, y) => x - y);
    rows.push({ path: `/${path}`, median: times[Math.floor(times.length / 2)], p95: times[Math.min(times.length - 1, Math.ceil(times.length * 0.95) - 1)], bytes });
  }
  await server.close();
  await qb.close();
  console.log(`\n${PENDING.toLocaleString('en-US')} pending, ${FAILED.toLocaleString('en-US')} failed, ${N} requests each (after one warm-up):\n`);
  console.log('| Page | Median | p95 | Size |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(`| \`${r.path}\` | ${fmt(r.median)} ms | ${fmt(r.p95)} ms | ${Math.round(r.bytes / 1024)} KB |`);
} finally {
  await rm(home, { recursive: true, force: true });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.end();
}
