import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import mysql from 'mysql2/promise';
import { findDriverFactory } from '../src/db/registry.js';
import { ADMIN_URL, TEST_CHARSET, TEST_COLLATION } from './helpers.js';

/**
 * The databases the conformance suite runs its scenarios against: one fixture per dialect,
 * each making a fresh database, checking rows through its own client (never through
 * querybatch), and spelling the few statements that differ between dialects.
 */

/** What a scenario reads back of the typed row, normalised the same way for every dialect. */
export interface TypedRow {
  readonly i: string;
  readonly s: string;
  readonly b: string;
  readonly d: string;
  readonly n: string;
  readonly f: number;
}

export interface FixtureDatabase {
  /** The datasource URL (a SQLite URL is relative to the home). */
  readonly url: string;
  /** Rows of a query, through the dialect's own client (`?` placeholders). */
  query(sql: string, params?: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export interface DialectFixture {
  readonly name: 'mariadb' | 'postgres' | 'sqlite';
  /** A fresh, empty database (a SQLite one in `home`). */
  open(home: string): Promise<FixtureDatabase>;
  /** A table `name` with an increasing key `k` and a text column `v`. */
  table(name: string): string;
  /** A table `name` for typed values: i (64-bit integer), s (text), b (bytes), d (time with ms), n (decimal 20,6), f (double). */
  typedTable(name: string): string;
  /** The typed row, read back normalised: i and n as decimal strings, b as hex, d as an ISO instant. */
  readTyped(db: FixtureDatabase, name: string): Promise<TypedRow>;
  /** A statement that takes about `seconds`. */
  sleep(seconds: number): string;
  /** A temporary table shadowing `name` for the rest of the session. */
  tempTable(name: string): string;
}

const hex = (v: unknown): string => Buffer.from(v as Uint8Array).toString('hex');

export const mariadb: DialectFixture = {
  name: 'mariadb',
  async open() {
    const name = `qbtest_conf_${randomBytes(4).toString('hex')}`;
    const admin = await mysql.createConnection({ uri: ADMIN_URL });
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET ${TEST_CHARSET} COLLATE ${TEST_COLLATION}`);
    await admin.end();
    const url = ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
    const db = await mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z' });
    return {
      url,
      query: async (sql, params = []) => (await db.query(sql, [...params] as never[]))[0] as Array<Record<string, unknown>>,
      exec: async (sql) => void (await db.query(sql)),
      async close() {
        await db.query(`DROP DATABASE IF EXISTS \`${name}\``);
        await db.end();
      },
    };
  },
  table: (name) => `CREATE TABLE ${name} (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB`,
  typedTable: (name) => `CREATE TABLE ${name} (i BIGINT, s VARCHAR(100), b LONGBLOB, d DATETIME(3), n DECIMAL(20,6), f DOUBLE) ENGINE=InnoDB`,
  async readTyped(db, name) {
    const [row] = await db.query(`SELECT CAST(i AS CHAR) AS i, s, b, DATE_FORMAT(d, '%Y-%m-%dT%H:%i:%s.%fZ') AS d, CAST(n AS CHAR) AS n, f FROM ${name}`);
    return { i: String(row!.i), s: String(row!.s), b: hex(row!.b), d: new Date(String(row!.d)).toISOString(), n: String(row!.n), f: Number(row!.f) };
  },
  sleep: (seconds) => `SELECT SLEEP(${seconds})`,
  tempTable: (name) => `CREATE TEMPORARY TABLE ${name} (k INT, v VARCHAR(100))`,
};

/** Loads a CommonJS module (better-sqlite3, pg) from an ES module test. */
const requireCjs = createRequire(join(import.meta.dirname, 'dialects.ts'));

/** The PostgreSQL every machine runs. Override with QUERYBATCH_TEST_PG_URL. */
export const PG_ADMIN_URL = process.env.QUERYBATCH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** `?` placeholders as PostgreSQL's `$n` (the fixtures' own SQL has no `?` inside strings). */
const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

export const postgres: DialectFixture = {
  name: 'postgres',
  async open() {
    const pg = requireCjs('pg') as typeof import('pg');
    const name = `qbtest_conf_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
    await admin.end();
    const url = PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return {
      url,
      query: async (sql, params = []) => (await client.query(numbered(sql), [...params])).rows as Array<Record<string, unknown>>,
      exec: async (sql) => void (await client.query(sql)),
      async close() {
        await client.end();
        const drop = new pg.Client({ connectionString: PG_ADMIN_URL });
        await drop.connect();
        await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await drop.end();
      },
    };
  },
  table: (name) => `CREATE TABLE ${name} (k SERIAL PRIMARY KEY, v VARCHAR(100))`,
  typedTable: (name) => `CREATE TABLE ${name} (i BIGINT, s VARCHAR(100), b BYTEA, d TIMESTAMPTZ(3), n NUMERIC(20,6), f DOUBLE PRECISION)`,
  async readTyped(db, name) {
    const [row] = await db.query(`SELECT i::text AS i, s, encode(b, 'hex') AS b, to_char(d AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS d, n::text AS n, f FROM ${name}`);
    return { i: String(row!.i), s: String(row!.s), b: String(row!.b), d: new Date(String(row!.d)).toISOString(), n: String(row!.n), f: Number(row!.f) };
  },
  sleep: (seconds) => `SELECT pg_sleep(${seconds})`,
  tempTable: (name) => `CREATE TEMP TABLE ${name} (k INT, v VARCHAR(100))`,
};

export const sqlite: DialectFixture = {
  name: 'sqlite',
  open(home) {
    const Database = requireCjs('better-sqlite3') as typeof import('better-sqlite3');
    const db = new Database(join(home, 'conformance.db'));
    db.pragma('busy_timeout = 5000');
    const query = (sql: string, params: readonly unknown[] = []): Array<Record<string, unknown>> => {
      const statement = db.prepare(sql).safeIntegers(true);
      if (statement.reader) return statement.all(...params) as Array<Record<string, unknown>>;
      statement.run(...params);
      return [];
    };
    return Promise.resolve({
      url: 'sqlite:conformance.db',
      query: (sql, params) => Promise.resolve(query(sql, params)),
      exec: (sql) => Promise.resolve(void db.exec(sql)),
      close: () => Promise.resolve(void db.close()),
    });
  },
  table: (name) => `CREATE TABLE ${name} (k INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)`,
  typedTable: (name) => `CREATE TABLE ${name} (i INTEGER, s TEXT, b BLOB, d ANY, n TEXT, f REAL)`,
  async readTyped(db, name) {
    const [row] = await db.query(`SELECT i, s, b, d, n, f FROM ${name}`);
    const d = row!.d;
    return {
      i: String(row!.i),
      s: String(row!.s),
      b: hex(row!.b),
      d: new Date(typeof d === 'bigint' ? Number(d) : (d as string | number)).toISOString(),
      n: String(row!.n),
      f: Number(row!.f),
    };
  },
  // No sleep function: a recursive count, about 3,000,000 rows a second here (at least `seconds` on a machine up to that fast).
  sleep: (seconds) => `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${Math.round(seconds * 3_000_000)}) SELECT count(*) FROM c`,
  tempTable: (name) => `CREATE TEMP TABLE ${name} (k INTEGER, v TEXT)`,
};

/** The dialects the suite runs on: MariaDB, and each other dialect whose driver is registered. */
export const DIALECTS: readonly DialectFixture[] = [
  mariadb,
  ...(findDriverFactory('postgres://x/y') ? [postgres] : []),
  ...(findDriverFactory('sqlite:x.db') ? [sqlite] : []),
];

/** A SQLite session's process (db/sqlite/process.ts): its pid, state (R running, S sleeping, Z …) and CPU time so far. */
export interface SqliteSessionProcess {
  readonly pid: number;
  readonly state: string;
  readonly cpuMs: number;
}

/** Linux: a process's state and CPU time from /proc/<pid>/stat, or undefined once it is gone. */
export function processStat(pid: number): { state: string; cpuMs: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces, in parentheses): state is the 3rd, utime and stime the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, cpuMs: (Number(fields[11]) + Number(fields[12])) * 10 }; // 100 ticks a second
  } catch {
    return undefined;
  }
}

/** The SQLite session processes whose parent is `parent` (a runner, or this test process). */
export function sqliteSessions(parent: number): SqliteSessionProcess[] {
  const ps = spawnSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .filter((line) => line.includes('QUERYBATCH_SQLITE_MODULE'))
    .map((line) => Number.parseInt(line.trim(), 10))
    .flatMap((pid) => {
      const stat = processStat(pid);
      return stat === undefined ? [] : [{ pid, ...stat }];
    });
}

/**
 * What the fault suite (crash.test.ts, faults.test.ts) needs of a dialect beyond its fixture:
 * a write that takes a while, and another session's statement found and its connection
 * killed from a second session (SQLite: the session's child process SIGKILLed).
 */
export interface FaultDialect {
  readonly fixture: DialectFixture;
  /** An INSERT of its one `?` param into `table`'s column v (a fixture table) that takes `seconds` on the server. */
  slowInsert(table: string, seconds: number): string;
  /**
   * Another session of `db` running a statement matching `like` (SQL LIKE): its id, or undefined.
   * SQLite has no list of sessions: a session process of this test process that has been
   * running a statement (not starting up) for a while, whatever its SQL.
   */
  sessionRunning(db: FixtureDatabase, like: string): Promise<number | undefined>;
  /** Kills session `id`'s connection from `db`'s: MariaDB's KILL CONNECTION, PostgreSQL's pg_terminate_backend, SQLite's process SIGKILLed. */
  killSession(db: FixtureDatabase, id: number): Promise<void>;
}

const databaseOf = (db: FixtureDatabase): string => decodeURIComponent(new URL(db.url).pathname.slice(1));

export const FAULT_DIALECTS: readonly FaultDialect[] = [
  {
    fixture: mariadb,
    slowInsert: (table, seconds) => `INSERT INTO ${table} (v) VALUES (? + SLEEP(${seconds}))`,
    async sessionRunning(db, like) {
      const rows = await db.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID() AND DB = ?', [like, databaseOf(db)]);
      return rows[0] === undefined ? undefined : Number(rows[0].id);
    },
    killSession: (db, id) => db.exec(`KILL CONNECTION ${Number(id)}`),
  },
  ...DIALECTS.filter((d) => d === postgres).map((fixture): FaultDialect => ({
    fixture,
    slowInsert: (table, seconds) => `INSERT INTO ${table} (v) SELECT ? FROM pg_sleep(${seconds})`,
    async sessionRunning(db, like) {
      const rows = await db.query("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE ? AND pid <> pg_backend_pid() AND datname = ?", [like, databaseOf(db)]);
      return rows[0] === undefined ? undefined : Number(rows[0].pid);
    },
    async killSession(db, id) {
      const [row] = await db.query('SELECT pg_terminate_backend(?) AS killed', [id]);
      if (row?.killed !== true) throw new Error(`pg_terminate_backend(${id}) found no such session`);
    },
  })),
  ...DIALECTS.filter((d) => d === sqlite).map((fixture): FaultDialect => ({
    // Each scenario's runners have homes of their own: the database is named by its absolute path.
    fixture: { ...fixture, open: async (home) => ({ ...(await fixture.open(home)), url: `sqlite://${join(home, 'conformance.db')}` }) },
    slowInsert: (table, seconds) => `INSERT INTO ${table} (v) SELECT ? FROM (${fixture.sleep(seconds)})`,
    sessionRunning: (_db, _like) => Promise.resolve(sqliteSessions(process.pid).find((s) => s.state === 'R' && s.cpuMs >= 400)?.pid),
    killSession: (_db, pid) => Promise.resolve(void process.kill(pid, 'SIGKILL')),
  })),
];
