import mysql from 'mysql2/promise';
import { escapeId } from 'mysql2';
import type { Connection as CoreConnection, ConnectionOptions } from 'mysql2';
import type { PoolConnection, ResultSetHeader } from 'mysql2/promise';
import type { BatchJob, ExecuteResult, LedgerSettings, LockKey, OnceResult, Session, StatementParams } from '../driver.js';
import { classifyError } from './classify.js';
import { escapeLiteral, inlineStatement, isNamed, type EscapeRules } from './inline.js';
import { FIRST_JOB_RESULT, PRUNE_CHUNK, insertLedgerRows, ledgerTransaction, messageForStatement, pruneLedgerRows, selectLedgerRow } from './ledger-sql.js';
import { inspectStatement } from './statement.js';

/** 1062 ER_DUP_ENTRY */
const DUPLICATE_KEY = 1062;

/**
 * Error numbers for "this statement can't be prepared (now)": fall back to a plain query.
 * 1461: the server's max_prepared_stmt_count is reached (other clients may hold them).
 */
const NOT_PREPARABLE = new Set([1295 /* ER_UNSUPPORTED_PS */, 1461 /* ER_MAX_PREPARED_STMT_COUNT_REACHED */]);

/** The rows a statement's result header says it changed; 0 for a result set. */
/** A server error about a statement sent inside a ledger transaction says no more of the text than the statement (ledger-sql.ts messageForStatement). */
function unquoteTrailer(error: unknown, statement: string): void {
  const e = error as { message?: unknown; sqlMessage?: unknown };
  if (typeof e.message === 'string') e.message = messageForStatement(e.message, statement);
  if (typeof e.sqlMessage === 'string') e.sqlMessage = messageForStatement(e.sqlMessage, statement);
}

function affectedRowsOf(result: unknown): number {
  const affected = (result as Partial<ResultSetHeader> | null | undefined)?.affectedRows;
  return typeof affected === 'number' ? affected : 0;
}

/** A GET_LOCK name; a bigint key (a PostgreSQL advisory lock's) is a caller's mistake. */
function lockName(key: LockKey): string {
  if (typeof key !== 'string') throw new TypeError(`Expected a MySQL lock key to be a GET_LOCK name (a string); got the bigint ${key}`);
  return key;
}

/** One pooled connection, as a run uses it. */
export class MysqlSession implements Session {
  readonly #connection: PoolConnection;
  readonly #ledger: LedgerSettings | null;
  /** The ledger table, quoted. */
  readonly #table: string;
  /** How cancel() opens a connection of its own: the pool's settings, as a single connection. */
  readonly #cancelOptions: ConnectionOptions;
  /** How strings and Dates are written into SQL text; the SQL mode is read by init(). */
  #rules: EscapeRules;

  constructor(connection: PoolConnection, ledger: LedgerSettings | null, cancelOptions: ConnectionOptions) {
    this.#connection = connection;
    this.#ledger = ledger;
    this.#table = ledger ? escapeId(ledger.table) : '';
    this.#cancelOptions = cancelOptions;
    const config = (connection as unknown as { connection?: { config?: { timezone?: unknown } } }).connection?.config;
    this.#rules = { timezone: typeof config?.timezone === 'string' ? config.timezone : 'local', noBackslashEscapes: false };
  }

  /** Reads the SQL mode (NO_BACKSLASH_ESCAPES changes how a string literal is written). */
  async init(): Promise<void> {
    const [rows] = await this.#connection.query('SELECT @@SESSION.sql_mode AS mode');
    const mode = (rows as Array<{ mode: unknown }>)[0]?.mode;
    const noBackslashEscapes = typeof mode === 'string' && mode.includes('NO_BACKSLASH_ESCAPES');
    this.#rules = { ...this.#rules, noBackslashEscapes };
  }

  #requireLedger(): LedgerSettings {
    if (!this.#ledger) throw new Error('This session has no ledger (the datasource has ledger: false)');
    return this.#ledger;
  }

  /** The INSERT of these jobs' ledger rows. */
  #ledgerRows(ledger: LedgerSettings, ids: readonly string[]): string {
    return insertLedgerRows(this.#table, ledger.spool, ids, (value) => escapeLiteral(value, this.#rules));
  }

  /** With the ledger the pool allows several statements per query: never for a job's text. */
  #isMultiple(sql: string): boolean {
    return inspectStatement(sql, !this.#rules.noBackslashEscapes).multiple;
  }

  /**
   * After a statement of an open ledger transaction failed: a lost connection is rethrown
   * as it is (the server rolls back for us), anything else is rolled back here.
   */
  async #rollbackAfter(error: unknown): Promise<void> {
    if (classifyError(error, 'execute') === 'connection') throw error;
    await this.#connection.query('ROLLBACK');
  }

  async executeOnce(id: string, sql: string, params: StatementParams): Promise<OnceResult> {
    const record = this.#ledgerRows(this.#requireLedger(), [id]);
    const inline = inlineStatement(sql, params, this.#rules);
    try {
      if (inline !== null) {
        // One round trip: the ledger row and the statement commit together or not at all.
        const [results] = await this.#connection.query(ledgerTransaction(record, [inline]));
        return { status: 'done', affectedRows: affectedRowsOf((results as unknown[])[FIRST_JOB_RESULT]) };
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
      if (inline !== null) unquoteTrailer(error, inline);
      throw error;
    }
  }

  async executeBatch(jobs: readonly BatchJob[]): Promise<readonly number[] | null> {
    const ledger = this.#requireLedger();
    const statements: string[] = [];
    for (const job of jobs) {
      const inline = inlineStatement(job.sql, job.params, this.#rules);
      if (inline === null) return null;
      statements.push(inline);
    }
    try {
      const [results] = await this.#connection.query(ledgerTransaction(this.#ledgerRows(ledger, jobs.map((job) => job.id)), statements));
      return (results as unknown[]).slice(FIRST_JOB_RESULT, FIRST_JOB_RESULT + jobs.length).map(affectedRowsOf);
    } catch (error) {
      await this.#rollbackAfter(error);
      throw error;
    }
  }

  async isDone(id: string): Promise<boolean> {
    this.#requireLedger();
    const [rows] = await this.#connection.query(selectLedgerRow(this.#table), [id]);
    return (rows as unknown[]).length > 0;
  }

  async pruneLedger(beforeId: string): Promise<number> {
    const ledger = this.#requireLedger();
    let total = 0;
    for (;;) {
      const [result] = await this.#connection.query(pruneLedgerRows(this.#table), [ledger.spool, beforeId]);
      const n = (result as ResultSetHeader).affectedRows;
      total += n;
      if (n < PRUNE_CHUNK) return total;
    }
  }

  async execute(sql: string, params: StatementParams): Promise<ExecuteResult> {
    const query = { sql, namedPlaceholders: isNamed(params) };
    const values = params as unknown as never;
    let result: unknown;
    try {
      [result] = await this.#connection.execute(query, values);
    } catch (error) {
      if (!NOT_PREPARABLE.has((error as { errno?: number }).errno ?? 0)) throw error;
      if (this.#isMultiple(sql)) throw error;
      [result] = await this.#connection.query(query, values);
    }
    return { affectedRows: affectedRowsOf(result) };
  }

  async stream(
    sql: string,
    params: StatementParams,
    onColumns: (columns: string[]) => void,
    onRow: (row: unknown[]) => Promise<void>,
  ): Promise<{ rows: number; affectedRows: number }> {
    if (this.#isMultiple(sql)) {
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

  async tryLock(key: LockKey): Promise<boolean> {
    const [rows] = await this.#connection.query('SELECT GET_LOCK(?, 0) AS granted', [lockName(key)]);
    return Number((rows as Array<{ granted: unknown }>)[0]?.granted) === 1;
  }

  async unlock(key: LockKey): Promise<void> {
    await this.#connection.query('SELECT RELEASE_LOCK(?)', [lockName(key)]);
  }

  /**
   * KILL QUERY from a connection of its own, not the pool's: the pool may have no connection
   * to spare, and a cancel must not wait behind the statement it stops. If that connection
   * can't be had, the session itself is dropped: the server then ends the statement when it
   * finds the client gone (a lost connection; the runner treats it as one).
   *
   * Checked against MariaDB 10.11 with mysql2 3.24: the dropped session's statement is not
   * cut short (mysql2's destroy() only half-closes the socket): it runs to its end and its
   * result still arrives; the session's next call fails as a lost connection.
   */
  async cancel(): Promise<void> {
    let killer: mysql.Connection | null = null;
    try {
      killer = await mysql.createConnection(this.#cancelOptions);
      // The server's id of this session's connection: it is what KILL QUERY names.
      await killer.query(`KILL QUERY ${Number(this.#connection.threadId)}`);
    } catch {
      this.destroy();
    } finally {
      await killer?.end().catch(() => killer?.destroy());
    }
  }

  release(): void {
    this.#connection.release();
  }

  destroy(): void {
    this.#connection.destroy();
  }
}
