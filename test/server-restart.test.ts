/**
 * MariaDB stopped (SIGTERM: clean shutdown) and crashed (SIGKILL) during a run, then
 * started again. Runs a PRIVATE mariadbd on its own data directory and port: the shared
 * server on 3306 is never touched. In full mode (QUERYBATCH_FAULTS=full) the same scenario
 * runs on the shared PostgreSQL cluster, which it stops and starts. Not on SQLite: it has no
 * server to restart (its nearest fault, the session's process SIGKILLed mid-statement, is in
 * faults.test.ts; a runner SIGKILLed with its session, in crash.test.ts and sqlite.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { QueryBatch, type DatasourceOptions } from '../src/index.js';
import { findDriverFactory } from '../src/db/registry.js';
import { createPgTestDatabase, filesBelow, PG_ADMIN_URL, removeHome, tempHome, waitFor, type PgTestDatabase } from './helpers.js';

const FULL = process.env.QUERYBATCH_FAULTS === 'full';

const MARIADBD = '/usr/sbin/mariadbd';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

let dir: string;
let port: number;
let server: ChildProcess | null = null;

async function startServer(): Promise<void> {
  server = spawn(MARIADBD, [
    '--no-defaults', `--datadir=${join(dir, 'data')}`, `--socket=${join(dir, 'sock')}`, `--port=${port}`,
    '--bind-address=127.0.0.1', '--user=root', '--skip-log-bin', '--innodb-buffer-pool-size=32M',
    '--innodb-flush-log-at-trx-commit=1', `--log-error=${join(dir, 'error.log')}`, `--pid-file=${join(dir, 'pid')}`,
  ], { stdio: 'ignore' });
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
      await c.end();
      return;
    } catch {
      if (Date.now() > end) throw new Error('private mariadbd did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stopServer(signal: NodeJS.Signals): Promise<void> {
  const s = server!;
  const exited = new Promise((r) => s.on('exit', r));
  s.kill(signal);
  await exited;
  server = null;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qb-mariadbd-'));
  port = await freePort();
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${join(dir, 'data')}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--user=root'], { stdio: 'ignore' });
  await startServer();
}, 120_000);

afterAll(async () => {
  if (server) await stopServer('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** A server a run is cut by: stopped cleanly or crashed, then started again. */
interface RestartTarget {
  readonly name: string;
  /** The datasource, with a table `audit` (n increasing, job INT) that `table` names. */
  readonly datasource: DatasourceOptions;
  readonly table: string;
  /** Rows of a query on a connection of its own (the server's restarts end any other). */
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  stop(how: 'clean' | 'crash'): Promise<void>;
  start(): Promise<void>;
}

/**
 * Spools 1,500 INSERTs, then twice starts a run and stops the server under it once it is well
 * under way (cleanly, then a crash), checks a run while it is down changes nothing but the
 * head job's attempts, and starts it again; then drains: every job once, in order.
 */
async function restartDuringRun(target: RestartTarget): Promise<void> {
  const rows = async () => Number((await target.query(`SELECT COUNT(*) AS c FROM ${target.table}`))[0]!.c);
  const total = 1500;
  const home = await tempHome();
  const q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: target.datasource }, maxConnectionAttempts: 10 });
  try {
    // Two texts in turns of two: runs of two jobs merge into one INSERT (coalescing), while the
    // groups stay small enough (32 statements) for the stop to land mid-drain.
    for (let k = 0; k < total; k++) await q.spool(k % 4 < 2 ? `INSERT INTO ${target.table} (job) VALUES (?)` : `INSERT INTO ${target.table}(job) VALUES (?)`, [k]);
    const summaries = [];
    for (const how of ['clean', 'crash'] as const) {
      const running = q.run();
      const start = await rows();
      // Stop the server once the run is well under way.
      for (let i = 0; i < 400 && (await rows()) < start + 150; i++) await new Promise((r) => setTimeout(r, 10));
      await target.stop(how);
      try {
        const summary = await running;
        summaries.push(summary);
        expect(summary.connectionFailed).toBe(1); // the datasource stopped on the lost server
        expect(summary.deferred).toBeGreaterThan(0);
        // While it is down, a run changes nothing but the attempt count of the head job.
        expect(await q.run()).toMatchObject({ success: 0, connectionFailed: 1 });
      } finally {
        await target.start();
      }
    }
    let last = await q.run();
    for (let i = 0; i < 5 && (await filesBelow(join(home, 'spool'))).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      last = await q.run();
    }
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    expect(last.sqlFailed).toBe(0);

    const counts = await target.query(`SELECT job, COUNT(*) AS c FROM ${target.table} GROUP BY job`);
    const duplicates = counts.reduce((n, r) => n + Number(r.c) - 1, 0);
    const lost = total - counts.length;
    const ordered = (await target.query(`SELECT job FROM ${target.table} ORDER BY n`)).map((r) => Number(r.job));
    console.log(`[faults] ${target.name}: stopped cleanly then crashed mid-drain, restarted each time: ${total} statements, ${duplicates} duplicates, ${lost} lost; runs cut after ${summaries.map((s) => s.success).join(' and ')} statements`);
    expect({ duplicates, lost }).toEqual({ duplicates: 0, lost: 0 });
    expect(ordered).toEqual(Array.from({ length: total }, (_, k) => k));
  } finally {
    await q.close();
    await removeHome(home);
  }
}

describe('MariaDB stopped and restarted during a run (private server)', () => {
  it('clean stop and crash mid-drain: every job runs exactly once after restarts, in order', async () => {
    const admin = async () => mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
    const c = await admin();
    await c.query('CREATE DATABASE restart CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci');
    await c.query('CREATE TABLE restart.audit (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    await c.end();
    await restartDuringRun({
      name: 'private MariaDB (SIGTERM, then SIGKILL)',
      datasource: { url: `mysql://root@127.0.0.1:${port}/restart`, options: { connectTimeout: 2000 } },
      table: 'restart.audit',
      async query(sql) {
        const conn = await admin();
        try {
          return (await conn.query(sql))[0] as Array<Record<string, unknown>>;
        } finally {
          await conn.end();
        }
      },
      stop: (how) => stopServer(how === 'clean' ? 'SIGTERM' : 'SIGKILL'),
      start: startServer,
    });
  }, 240_000);
});

/**
 * The shared PostgreSQL cluster stopped (fast: a clean shutdown) and crashed (immediate: crash
 * recovery at the next start) during a run, then started again. Full mode only, and
 * `npm run test:faults` runs this file after the others: every session on the cluster, of
 * any test, is ended.
 */
describe.skipIf(!FULL || !findDriverFactory('postgres://x/y'))('PostgreSQL stopped and restarted during a run (the shared cluster, full mode)', () => {
  const cluster = (action: string, ...args: string[]) =>
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', readdirSync('/etc/postgresql')[0]!, 'main', action, ...args], { stdio: 'ignore' });
  async function answering(): Promise<void> {
    const { default: pg } = await import('pg');
    await waitFor(async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SELECT 1');
        return true;
      } catch {
        return undefined;
      } finally {
        await c.end().catch(() => {});
      }
    }, 60_000, 'PostgreSQL to answer');
  }
  let t: PgTestDatabase | undefined;

  afterAll(async () => {
    // Never left stopped, whatever happened.
    try {
      cluster('start');
    } catch {
      // already running
    }
    await answering();
    await t?.drop();
  });

  it('clean stop and crash mid-drain: every job runs exactly once after restarts, in order', async () => {
    t = await createPgTestDatabase('restart');
    await t.db.query('CREATE TABLE audit (n SERIAL PRIMARY KEY, job INT NOT NULL)');
    const { default: pg } = await import('pg');
    await restartDuringRun({
      name: 'PostgreSQL (pg_ctlcluster stop -m fast, then -m immediate)',
      datasource: { url: t.url, options: { connectionTimeoutMillis: 2000 } },
      table: 'audit',
      async query(sql) {
        const c = new pg.Client({ connectionString: t!.url });
        c.on('error', () => {});
        await c.connect();
        try {
          return (await c.query(sql)).rows as Array<Record<string, unknown>>;
        } finally {
          await c.end().catch(() => {});
        }
      },
      stop: (how) => Promise.resolve(void cluster('stop', '-m', how === 'clean' ? 'fast' : 'immediate')),
      async start() {
        cluster('start');
        await answering();
      },
    });
    // The test database's own client died with the first stop: drop() opens its own.
  }, 240_000);
});

describe('sql_mode NO_BACKSLASH_ESCAPES (private server: its global sql_mode is changed)', () => {
  it('values inlined into the one-trip ledger transaction arrive exactly, batched and alone; named params too', async () => {
    const admin = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
    const home = await tempHome();
    let q: QueryBatch | null = null;
    try {
      await admin.query("SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')");
      await admin.query('CREATE DATABASE nbe CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci');
      await admin.query('CREATE TABLE nbe.t (n INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, s TEXT, b BLOB) CHARACTER SET utf8mb4');
      const hostile = ["a'b", 'back\\slash', "\\'; DROP TABLE nbe.t; -- ", 'nul\0byte', 'line\nbreak\r\ttab', '\u00e9\u{1F600}', "''", '\\', '?', ':k'];
      const bytes = Buffer.from([0x00, 0x5c, 0x27, 0x22, 0x0a, 0xff]);
      const url = `mysql://root@127.0.0.1:${port}/nbe`;
      for (const batch of [32, 1]) {
        q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url, ledger: { batch } } } });
        for (const [k, s] of hostile.entries()) await q.spool('INSERT INTO t (k, s, b) VALUES (?, ?, ?)', [k, s, bytes]);
        await q.spool('INSERT INTO t (k, s, b) VALUES (:k, :s, :b)', { k: 99, s: "named 'x' \\ y", b: bytes });
        expect(await q.run()).toMatchObject({ success: hostile.length + 1, sqlFailed: 0 });
        const [rows] = await admin.query('SELECT k, s, b FROM nbe.t ORDER BY n');
        expect((rows as Array<{ k: number; s: string; b: Buffer }>).map((r) => [r.k, r.s, Buffer.compare(r.b, bytes)])).toEqual([
          ...hostile.map((s, k) => [k, s, 0]),
          [99, "named 'x' \\ y", 0],
        ]);
        await admin.query('DELETE FROM nbe.t');
        await q.close();
        q = null;
      }
    } finally {
      await q?.close();
      await removeHome(home);
      await admin.query("SET GLOBAL sql_mode = REPLACE(@@GLOBAL.sql_mode, 'NO_BACKSLASH_ESCAPES', '')").catch(() => {});
      await admin.query('DROP DATABASE IF EXISTS nbe').catch(() => {});
      await admin.end();
    }
  }, 120_000);
});
