import { randomBytes } from 'node:crypto';
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
