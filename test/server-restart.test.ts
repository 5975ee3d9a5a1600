/**
 * MariaDB stopped (SIGTERM: clean shutdown) and crashed (SIGKILL) during a run, then
 * started again. Runs a PRIVATE mariadbd on its own data directory and port: the shared
 * server on 3306 is never touched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../src/index.js';
import { filesBelow, removeHome, tempHome } from './helpers.js';

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

describe('MariaDB stopped and restarted during a run (private server)', () => {
  it('clean stop and crash mid-drain: every job runs exactly once after restarts, in order', async () => {
    const url = `mysql://root@127.0.0.1:${port}/restart`;
    const admin = async () => mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
    let c = await admin();
    await c.query('CREATE DATABASE restart CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci');
    await c.query('CREATE TABLE restart.audit (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    await c.end();
    const rows = async () => {
      const conn = await admin();
      try {
        const [r] = await conn.query('SELECT COUNT(*) AS c FROM restart.audit');
        return Number((r as Array<{ c: number }>)[0]!.c);
      } finally {
        await conn.end();
      }
    };

    const total = 1500;
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url, options: { connectTimeout: 2000 } } }, maxConnectionAttempts: 10 });
    try {
      for (let k = 0; k < total; k++) await q.spool('INSERT INTO restart.audit (job) VALUES (?)', [k]);
      const summaries = [];
      for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
        const running = q.run();
        const start = await rows();
        // Stop the server once the run is well under way.
        for (let i = 0; i < 400 && (await rows()) < start + 150; i++) await new Promise((r) => setTimeout(r, 10));
        await stopServer(signal);
        const summary = await running;
        summaries.push(summary);
        expect(summary.connectionFailed).toBe(1); // the datasource stopped on the lost server
        expect(summary.deferred).toBeGreaterThan(0);
        // While it is down, a run changes nothing but the attempt count of the head job.
        expect(await q.run()).toMatchObject({ success: 0, connectionFailed: 1 });
        await startServer();
      }
      let last = await q.run();
      for (let i = 0; i < 5 && (await filesBelow(join(home, 'spool'))).length > 0; i++) last = await q.run();
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
      expect(last.sqlFailed).toBe(0);

      c = await admin();
      const [counts] = await c.query('SELECT job, COUNT(*) AS c FROM restart.audit GROUP BY job HAVING c > 1');
      const [ordered] = await c.query('SELECT job FROM restart.audit ORDER BY n');
      await c.end();
      expect(counts).toEqual([]);
      expect((ordered as Array<{ job: number }>).map((r) => r.job)).toEqual(Array.from({ length: total }, (_, k) => k));
      console.log(`[faults] private MariaDB: SIGTERM then SIGKILL mid-drain, restarted each time: ${total} statements, 0 duplicates, 0 lost; runs cut after ${summaries.map((s) => s.success).join(' and ')} statements`);
    } finally {
      await q.close();
      await removeHome(home);
    }
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
