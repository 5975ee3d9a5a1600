import mysql from 'mysql2/promise';
import { escape as mysqlEscape, escapeId } from 'mysql2';
import type { Pool, PoolConnection, PoolOptions, ResultSetHeader } from 'mysql2/promise';
import type { Connection as CoreConnection } from 'mysql2';
import { classifyError } from './classify.js';
import type { Driver, ExecuteResult, OnceResult, Session } from '../driver.js';
import type { ParamValue } from '../../spool/record.js';
import { inlineParams, inspectStatement, runsInLedgerTransaction } from './statement.js';

/** The ledger of one spool in one database: which job ids have committed. */
export interface LedgerSettings {
  /** Table name, `name` or `database.name`. */
  readonly table: string;
  /** The spool's id (spool/.id): several spools may share one database. */
  readonly spool: string;
}

/** mysql2's escape with the arguments its typings leave out (sql-escaper's signature). */
const escapeValue = mysqlEscape as unknown as (value: unknown, stringifyObjects: boolean, timezone: string, sqlMode: { noBackslashEscapes: boolean }) => string;

/** 1062 ER_DUP_ENTRY */
const DUPLICATE_KEY = 1062;

function ledgerTableSql(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  spool CHAR(24) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  done_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`;
}

/**
 * Error numbers for "this statement can't be prepared (now)": fall back to a plain query.
 * 1461: the server's max_prepared_stmt_count is reached (other clients may hold them).
 */
const NOT_PREPARABLE = new Set([1295 /* ER_UNSUPPORTED_PS */, 1461 /* ER_MAX_PREPARED_STMT_COUNT_REACHED */]);

/**
 * Our defaults for a spool runner's pool, under the user's URL query parameters and options:
 * - timezone 'Z': a Date is bound as UTC, whatever the time zone of the machine that runs it
 *   (producer and runner may be different machines);
 * - supportBigNumbers/bigNumberStrings: BIGINT and DECIMAL results are never rounded;
 * - maxPreparedStatements 64: every distinct SQL text is prepared once per connection and the
 *   pool keeps its connection between runs; mysql2's default cache (16,000) would let a spool
 *   of literal-valued statements use up the server-wide max_prepared_stmt_count (16,382).
 */
const BASE_OPTIONS: PoolOptions = {
  timezone: 'Z',
  supportBigNumbers: true,
  bigNumberStrings: true,
  connectTimeout: 10_000,
  connectionLimit: 2,
  maxIdle: 1,
  idleTimeout: 60_000,
  enableKeepAlive: true,
  maxPreparedStatements: 64,
};

/** BASE_OPTIONS less the ones the URL's query string sets (mysql2 lets explicit options win over the URL). */
function defaultsUnder(url: string): PoolOptions {
  const out: Record<string, unknown> = { ...BASE_OPTIONS };
  try {
    for (const key of new URL(url).searchParams.keys()) delete out[key];
  } catch {
    // config.ts has checked the URL already
  }
  return out as PoolOptions;
}

/** The rows a statement's result header says it changed; 0 for a result set. */
function affectedRowsOf(result: unknown): number {
  const affected = (result as Partial<ResultSetHeader> | null | undefined)?.affectedRows;
  return typeof affected === 'number' ? affected : 0;
}

function isNamed(params: readonly ParamValue[] | Record<string, ParamValue>): params is Record<string, ParamValue> {
  return !Array.isArray(params);
}

class MysqlSession implements Session {
  readonly #connection: PoolConnection;
  readonly #ledger: LedgerSettings | null;
  /** The ledger table, quoted. */
  readonly #table: string;
  /** Read from the session at connect: how strings must be escaped, and the time zone Dates are written in. */
  #noBackslashEscapes = false;
  readonly #timezone: string;

  constructor(connection: PoolConnection, ledger: LedgerSettings | null) {
    this.#connection = connection;
    this.#ledger = ledger;
    this.#table = ledger ? escapeId(ledger.table) : '';
    const config = (connection as unknown as { connection?: { config?: { timezone?: unknown } } }).connection?.config;
    this.#timezone = typeof config?.timezone === 'string' ? config.timezone : 'local';
  }

  /** Reads the SQL mode (NO_BACKSLASH_ESCAPES changes how a string literal is written). */
  async init(): Promise<void> {
    const [rows] = await this.#connection.query('SELECT @@SESSION.sql_mode AS mode');
    this.#noBackslashEscapes = String((rows as Array<{ mode: unknown }>)[0]?.mode ?? '').includes('NO_BACKSLASH_ESCAPES');
  }

  #escape(value: unknown): string {
    // Uint8Array that is not a Buffer: as bytes, like the prepared-statement path sends it.
    const v = value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value) : value;
    return escapeValue(v, true, this.#timezone, { noBackslashEscapes: this.#noBackslashEscapes });
  }

  #requireLedger(): LedgerSettings {
    if (!this.#ledger) throw new Error('This session has no ledger (the datasource has ledger: false)');
    return this.#ledger;
  }

  /**
   * The statement with its params written in, read with this session's escaping rules; null
   * unless it is a single statement that never commits by itself, with positional params
   * that match its placeholders (anything else takes the prepared-statement path).
   */
  #inline(sql: string, params: readonly ParamValue[] | Record<string, ParamValue>): string | null {
    const info = inspectStatement(sql, !this.#noBackslashEscapes);
    return isNamed(params) || !runsInLedgerTransaction(info) ? null : inlineParams(info, params, (v) => this.#escape(v));
  }

  /** The INSERT of these jobs' ledger rows. */
  #ledgerInsert(ledger: LedgerSettings, ids: readonly string[]): string {
    return `INSERT INTO ${this.#table} (id, spool) VALUES ${ids.map((id) => `(${this.#escape(id)}, ${this.#escape(ledger.spool)})`).join(', ')}`;
  }

  /**
   * After a statement of an open ledger transaction failed: a lost connection is rethrown
   * as it is (the server rolls back for us), anything else is rolled back here.
   */
  async #rollbackAfter(error: unknown): Promise<void> {
    if (classifyError(error, 'execute') === 'connection') throw error;
    await this.#connection.query('ROLLBACK');
  }

  async executeOnce(id: string, sql: string, params: readonly ParamValue[] | Record<string, ParamValue>): Promise<OnceResult> {
    const record = this.#ledgerInsert(this.#requireLedger(), [id]);
    const inline = this.#inline(sql, params);
    try {
      if (inline !== null) {
        // One round trip: the ledger row and the statement commit together or not at all.
        const [results] = await this.#connection.query(`START TRANSACTION; ${record}; ${inline}; COMMIT`);
        return { status: 'done', affectedRows: affectedRowsOf((results as unknown[])[2]) };
      }
      // Named params, or placeholders that don't match the values: the statement goes through
      // the prepared-statement path (the server reports a mismatch), four round trips.
      await this.#connection.query('START TRANSACTION');
      await this.#connection.query(record);
      const result = await this.execute(sql, params);
      await this.#connection.query('COMMIT');
      return { status: 'done', affectedRows: result.affectedRows };
    } catch (error) {
      // The statement (or the ledger row) failed: the transaction is still open. A rollback
      // that fails means the connection is gone, and the server rolls back for us.
      await this.#rollbackAfter(error);
      const e = error as { errno?: number; message?: string };
      if (e.errno === DUPLICATE_KEY && String(e.message).includes(id) && (await this.isDone(id))) return { status: 'done-before' };
      throw error;
    }
  }

  async executeBatch(jobs: ReadonlyArray<{ readonly id: string; readonly sql: string; readonly params: readonly ParamValue[] | Record<string, ParamValue> }>): Promise<readonly number[] | null> {
    const ledger = this.#requireLedger();
    const statements: string[] = [];
    for (const job of jobs) {
      const inline = this.#inline(job.sql, job.params);
      if (inline === null) return null;
      statements.push(inline);
    }
    try {
      const [results] = await this.#connection.query(`START TRANSACTION; ${this.#ledgerInsert(ledger, jobs.map((job) => job.id))}; ${statements.join('; ')}; COMMIT`);
      // One result per statement: START TRANSACTION, the ledger rows, the jobs', COMMIT.
      return (results as unknown[]).slice(2, 2 + jobs.length).map(affectedRowsOf);
    } catch (error) {
      await this.#rollbackAfter(error);
      throw error;
    }
  }

  async isDone(id: string): Promise<boolean> {
    this.#requireLedger();
    const [rows] = await this.#connection.query(`SELECT 1 AS done FROM ${this.#table} WHERE id = ?`, [id]);
    return (rows as unknown[]).length > 0;
  }

  async pruneLedger(beforeId: string): Promise<number> {
    const ledger = this.#requireLedger();
    let total = 0;
    for (;;) {
      const [result] = await this.#connection.query(`DELETE FROM ${this.#table} WHERE spool = ? AND id < ? LIMIT 10000`, [ledger.spool, beforeId]);
      const n = (result as ResultSetHeader).affectedRows;
      total += n;
      if (n < 10000) return total;
    }
  }

  async execute(sql: string, params: readonly ParamValue[] | Record<string, ParamValue>): Promise<ExecuteResult> {
    const query = { sql, namedPlaceholders: isNamed(params) };
    const values = params as unknown as never;
    let result: unknown;
    try {
      [result] = await this.#connection.execute(query, values);
    } catch (error) {
      if (!NOT_PREPARABLE.has((error as { errno?: number }).errno ?? 0)) throw error;
      // With a ledger the pool allows several statements per query: never for a job's text.
      if (inspectStatement(sql, !this.#noBackslashEscapes).multiple) throw error;
      [result] = await this.#connection.query(query, values);
    }
    return { affectedRows: affectedRowsOf(result) };
  }

  async stream(
    sql: string,
    params: readonly ParamValue[] | Record<string, ParamValue>,
    onColumns: (columns: string[]) => void,
    onRow: (row: unknown[]) => Promise<void>,
  ): Promise<{ rows: number; affectedRows: number }> {
    // With a ledger the pool allows several statements per query: never for a job's text.
    if (inspectStatement(sql, !this.#noBackslashEscapes).multiple) {
      throw Object.assign(new Error('Expected one statement to capture the result of; found several'), { code: 'ER_MULTIPLE_STATEMENTS' });
    }
    // The core connection's query streams (the promise wrapper's does not).
    const core = (this.#connection as unknown as { connection: CoreConnection }).connection;
    const query = core.query({ sql, values: params as never, rowsAsArray: true, namedPlaceholders: isNamed(params) });
    query.on('fields', (fields: Array<{ name: string }> | undefined) => onColumns((fields ?? []).map((f) => f.name)));
    let rows = 0;
    let affectedRows = 0;
    for await (const row of query.stream({ highWaterMark: 64 })) {
      if (!Array.isArray(row)) {
        // Not a result set (an UPDATE captured): its header.
        affectedRows += affectedRowsOf(row);
        continue;
      }
      await onRow(row);
      rows++;
    }
    return { rows, affectedRows };
  }

  get threadId(): number {
    return this.#connection.threadId;
  }

  async tryLock(name: string): Promise<boolean> {
    const [rows] = await this.#connection.query('SELECT GET_LOCK(?, 0) AS granted', [name]);
    return Number((rows as Array<{ granted: unknown }>)[0]?.granted) === 1;
  }

  async unlock(name: string): Promise<void> {
    await this.#connection.query('SELECT RELEASE_LOCK(?)', [name]);
  }

  release(): void {
    this.#connection.release();
  }

  destroy(): void {
    this.#connection.destroy();
  }
}

export class MysqlDriver implements Driver {
  readonly #pool: Pool;
  readonly #ledger: LedgerSettings | null;
  /** How to open a connection of its own (for cancel()): the pool's settings. */
  readonly #connectOptions: PoolOptions;
  #ledgerReady: Promise<unknown> | null = null;

  /** With `ledger`, sessions can run statements exactly once (the pool then allows multi-statement queries for that). */
  constructor(url: string, options: Omit<PoolOptions, 'uri'> = {}, ledger: LedgerSettings | null = null) {
    this.#ledger = ledger;
    this.#connectOptions = { ...defaultsUnder(url), ...options, uri: url };
    this.#pool = mysql.createPool({ ...defaultsUnder(url), ...options, uri: url, ...(ledger && { multipleStatements: true }) });
    // An idle pooled connection that dies emits 'error' on the pool's connection; the next
    // run sees a fresh one. Without a listener Node would crash the process.
    this.#pool.on('connection', (connection) => {
      connection.on('error', () => {});
    });
  }

  async connect(): Promise<Session> {
    const connection = await this.#pool.getConnection();
    const session = new MysqlSession(connection, this.#ledger);
    try {
      if (this.#ledger) {
        await session.init();
        this.#ledgerReady ??= connection.query(ledgerTableSql(escapeId(this.#ledger.table))).catch((error: unknown) => {
          this.#ledgerReady = null;
          throw error;
        });
        await this.#ledgerReady;
      }
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return session;
  }

  /**
   * KILL QUERY from a connection of its own, not the pool's: the pool may have no connection
   * to spare, and a cancel must not wait behind the statement it stops. If that connection
   * can't be had, the session itself is dropped: the server then ends the statement when it
   * finds the client gone (a lost connection; the runner treats it as one).
   */
  async cancel(session: Session): Promise<void> {
    const { connectionLimit: _l, maxIdle: _m, idleTimeout: _i, enableKeepAlive: _k, ...single } = this.#connectOptions;
    let killer: mysql.Connection | null = null;
    try {
      killer = await mysql.createConnection({ ...single, connectTimeout: 5_000 });
      await killer.query(`KILL QUERY ${Number(session.threadId)}`);
    } catch {
      session.destroy();
    } finally {
      await killer?.end().catch(() => killer?.destroy());
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
