import { afterAll, beforeAll } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import net from 'node:net';
import mysql from 'mysql2/promise';

/** The real MariaDB every machine runs. Override with QUERYBATCH_TEST_URL. */
export const ADMIN_URL = process.env.QUERYBATCH_TEST_URL ?? 'mysql://root@127.0.0.1:3306/test';

export const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

/** A port nothing listens on (for "database unreachable"). */
export const CLOSED_PORT_URL = 'mysql://root@127.0.0.1:1/test';

export interface TestDatabase {
  readonly name: string;
  /** URL of the database, for a datasource. */
  readonly url: string;
  /** A connection to it, for setting up tables and checking results. */
  readonly db: mysql.Connection;
  drop(): Promise<void>;
}

/**
 * The character set and collation of every test database, whatever the server's default:
 * the tests store and compare text outside Latin-1 (emoji, CJK).
 */
export const TEST_CHARSET = 'utf8mb4';
export const TEST_COLLATION = 'utf8mb4_unicode_ci';

/** A fresh database of its own for a test file (dropped by drop()). */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `qbtest_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: ADMIN_URL });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET ${TEST_CHARSET} COLLATE ${TEST_COLLATION}`);
  await admin.end();
  const url = ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const db = await mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z', dateStrings: false });
  return {
    name,
    url,
    db,
    async drop() {
      await db.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await db.end();
    },
  };
}

/**
 * This test file's database: created (with `setup` statements run in it) before its tests,
 * dropped after them. The handle is filled in by then; read it inside tests and hooks.
 */
export function useTestDatabase(label: string, ...setup: string[]): TestDatabase {
  const handle = {} as TestDatabase;
  beforeAll(async () => {
    Object.assign(handle, await createTestDatabase(label));
    for (const sql of setup) await handle.db.query(sql);
  });
  afterAll(async () => {
    await handle.drop?.();
  });
  return handle;
}

/** A new empty home directory. */
export async function tempHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'qb-home-'));
}

export async function removeHome(home: string): Promise<void> {
  await rm(home, { recursive: true, force: true });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI in a child process. */
export function runCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Every file below `dir` (any depth), as paths, except spool/.id (the spool's own name,
 * which stays). Directories are not listed.
 */
export async function filesBelow(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    // spool/.id names the spool; spool/.index/ caches what walks learned about large leaves (spool/leaf-index.ts).
    .filter((e) => !e.isDirectory() && !(e.name === '.id' && e.parentPath.endsWith('spool')) && !e.parentPath.endsWith(`spool${sep}.index`))
    .map((e) => join(e.parentPath, e.name));
}

/** The ids of the jobs in the job files below `dir` (a segment's each), sorted. */
export async function jobIdsBelow(dir: string): Promise<string[]> {
  const { parseJobFileName } = await import('../src/spool/shards.js');
  const { decodeRecord, decodeSegment } = await import('../src/spool/record.js');
  const ids: string[] = [];
  for (const path of await filesBelow(dir)) {
    const job = parseJobFileName(basename(path));
    if (job === undefined) continue;
    const text = await readFile(path, 'utf8');
    for (const record of job.count === 1 ? [decodeRecord(text)] : decodeSegment(text, job.count)) ids.push(record.id);
  }
  return ids.sort();
}

/** Waits (up to `timeoutMs`) for another session of `t`'s database to run a statement matching `like` (SQL LIKE); returns its connection id. */
export function sessionRunning(t: TestDatabase, like: string, timeoutMs = 10_000): Promise<number> {
  return waitFor(async () => {
    const [rows] = await t.db.query('SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID() AND DB = ?', [like, t.name]);
    return (rows as Array<{ ID: number }>)[0]?.ID;
  }, timeoutMs, `a session running ${like}`);
}

/** Polls `probe` every 10 ms until it returns something other than undefined; throws after `timeoutMs`, naming `what`. */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, what = 'a condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A runner process (`querybatch --home HOME run --json`), its exit and its output. */
export interface RunnerProcess {
  readonly child: import('node:child_process').ChildProcess;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export function startRunner(home: string, args: readonly string[] = ['run', '--json']): RunnerProcess {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^QUERYBATCH_/i.test(key)) delete env[key];
  const child = spawn(process.execPath, [CLI, '--home', home, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => {
      child.stdout.on('end', () => resolve({ code, signal, stdout, stderr }));
      if (child.stdout.readableEnded) resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, exit };
}

/** COUNT(*) of a query's rows, or of a table. */
export async function count(db: mysql.Connection, sql: string, params: unknown[] = []): Promise<number> {
  const [rows] = await db.query(sql, params);
  return Number((rows as Array<Record<string, unknown>>)[0]!.c);
}

/**
 * A TCP proxy in front of MariaDB that, once armed, forwards the next client packet holding
 * `needle` (e.g. COMMIT) to the server and then cuts the client's side at once: the server
 * runs it to the end, the client sees its connection lost and never gets the answer.
 */
export async function cuttingProxy(target: { host: string; port: number }, needle: string) {
  let armed = false;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('data', (d) => client.write(d));
    client.on('data', (d) => {
      upstream.write(d);
      if (armed && d.includes(needle)) {
        armed = false;
        cuts++;
        client.destroy(); // the server side stays open: the server finishes the transaction
        setTimeout(() => upstream.destroy(), 300);
      }
    });
    client.on('close', () => setTimeout(() => upstream.destroy(), 300));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    arm() {
      armed = true;
    },
    get cuts() {
      return cuts;
    },
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}


/** The names in failed/ a person sees with `ls`: the hidden reasons kept beside invalid files (spool/failed-dir.ts) left out. */
export async function failedNames(home: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(join(home, 'failed'))).filter((name) => !name.startsWith('.'));
}

/** The real PostgreSQL of the PostgreSQL tests (trust auth). Override with QUERYBATCH_TEST_PG_URL. */
export const PG_ADMIN_URL = process.env.QUERYBATCH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface PgTestDatabase {
  readonly name: string;
  readonly url: string;
  /** A client of its own on the database, for setting up tables and checking results. */
  readonly db: import('pg').Client;
  drop(): Promise<void>;
}

/** A fresh PostgreSQL database of its own for a test file (dropped by drop(), with any session still on it). */
export async function createPgTestDatabase(label: string): Promise<PgTestDatabase> {
  const { default: pg } = await import('pg');
  const name = `qbtest_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const db = new pg.Client({ connectionString: url });
  db.on('error', () => {});
  await db.connect();
  return {
    name,
    url,
    db,
    async drop() {
      await db.end().catch(() => {});
      const dropper = new pg.Client({ connectionString: PG_ADMIN_URL });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await dropper.end();
    },
  };
}

/** This test file's PostgreSQL database: created (with `setup` run in it) before its tests, dropped after them. */
export function usePgTestDatabase(label: string, ...setup: string[]): PgTestDatabase {
  const handle = {} as PgTestDatabase;
  beforeAll(async () => {
    Object.assign(handle, await createPgTestDatabase(label));
    for (const sql of setup) await handle.db.query(sql);
  });
  afterAll(async () => {
    await handle.drop?.();
  });
  return handle;
}
