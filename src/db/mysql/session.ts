import mysql from 'mysql2/promise';
import { escapeId } from 'mysql2';
import type { Connection as CoreConnection, ConnectionOptions } from 'mysql2';
import type { PoolConnection, ResultSetHeader } from 'mysql2/promise';
import { CoalescedBatchError, keyLedgerId, ledgerIdsOf, type BatchJob, type BatchOptions, type EachOptions, type EachResult, type ExecuteResult, LedgerSettings, LockKey, OnceResult, ScriptStep, ScriptStepResult, Session, StatementParams } from '../driver.js';
import { classifyError } from './classify.js';
import { escapeLiteral, inlineStatement, isNamed, type EscapeRules } from './inline.js';
import {
  FIRST_JOB_RESULT, PRUNE_CHUNK, createLedgerTable, insertKeyRowIfMissing, insertLedgerRows, ledgerTransaction, messageForStatement, openLedgerTransaction, pruneKeyRows, pruneLedgerRows, selectKeyRow,
  selectLedgerRow, selectScriptProgress, statementOfKey,
} from './ledger-sql.js';
import { packetBudget, packetTooLarge, preparedBytes } from './packet.js';
import { inspectStatement } from './statement.js';
import { coalesceRuns, inlinedShape, merges, perJob, type CoalesceLimits, type Run } from '../coalesce.js';
import type { InsertShape } from '../insert-shape.js';
import { mysqlInsertShape } from './insert-shape.js';
import { eachTrip, runEachUnderSavepoints, type TripResult } from '../savepoints.js';

/** A merged INSERT's rows at most (values are written into its text: no bound params; max_allowed_packet bounds the whole text). */
const COALESCE_LIMITS: CoalesceLimits = { maxRows: 1000, maxPlaceholders: Infinity };

/** 1062 ER_DUP_ENTRY */
const DUPLICATE_KEY = 1062;
/** 1146 ER_NO_SUCH_TABLE: a script dropped the ledger table (or its database, then created it again). */
const NO_SUCH_TABLE = 1146;
/** 1049 ER_BAD_DB_ERROR: the ledger's database is gone (a script dropped it and has not created it yet). */
const NO_SUCH_DATABASE = 1049;

/** Server status flags of an OK packet (MySQL protocol). */
const SERVER_STATUS_IN_TRANS = 0x0001;
const SERVER_STATUS_AUTOCOMMIT = 0x0002;

/**
 * Error numbers for "this statement can't be prepared (now)": fall back to a plain query.
 * 1461: the server's max_prepared_stmt_count is reached (other clients may hold them).
 */
const NOT_PREPARABLE = new Set([1295 /* ER_UNSUPPORTED_PS */, 1461 /* ER_MAX_PREPARED_STMT_COUNT_REACHED */]);

/** The rows a statement's result header says it changed; 0 for a result set. */
/** A server error about a statement sent inside a ledger transaction says no more of the text than the statement (ledger-sql.ts messageForStatement). */
function unquoteTrailer(error: unknown, statement: string, trailer?: string): void {
  const e = error as { message?: unknown; sqlMessage?: unknown };
  if (typeof e.message === 'string') e.message = messageForStatement(e.message, statement, trailer);
  if (typeof e.sqlMessage === 'string') e.sqlMessage = messageForStatement(e.sqlMessage, statement, trailer);
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

/** GET_LOCK(name, 0) on a connection: true when it was granted. */
async function granted(connection: mysql.Connection | PoolConnection, name: string): Promise<boolean> {
  const [rows] = await connection.query('SELECT GET_LOCK(?, 0) AS granted', [name]);
  return Number((rows as Array<{ granted: unknown }>)[0]?.granted) === 1;
}

/** The lock the job connection holds beside the datasource's (at most 64 characters: the datasource's is 51). */
function sessionLockName(name: string): string {
  return `${name}:session`;
}

/** One pooled connection, as a run uses it. */
export class MysqlSession implements Session {
  readonly #connection: PoolConnection;
  readonly #ledger: LedgerSettings | null;
  /** The ledger table, quoted. */
  readonly #table: string;
  /** How cancel() opens a connection of its own: the pool's settings, as a single connection. */
  readonly #cancelOptions: ConnectionOptions;
  /** The datasource's init statements: run on a new connection and after every reset. */
  readonly #init: readonly string[];
  /** How strings and Dates are written into SQL text; the SQL mode is read by setUp(). */
  #rules: EscapeRules;
  /**
   * The drain's lock is two GET_LOCKs. The datasource's lock is held on a connection of its
   * own, because a reset (COM_RESET_CONNECTION) releases the user-level locks of the
   * connection it resets. The job connection holds a second one, `<name>:session`, taken
   * again after each reset: while a dead runner's last statement still runs on the server,
   * its session holds that one, so no other runner starts before that statement ends (the
   * datasource's lock went with the dead runner's lock connection at once).
   */
  #lockConnection: mysql.Connection | null = null;
  /** The datasource's lock name, while this session holds it. */
  #held: string | null = null;
  /** The server's max_allowed_packet, read by setUp() (the server's default until then). */
  #maxPacket = 16 * 1024 * 1024;
  /** The datasource's database (the URL's path): a reset keeps the current database, so it is selected again. */
  readonly #database: string | null;
  /**
   * The ledger table for a script's statements, qualified with the datasource's database: a
   * script's USE must not move the ledger.
   */
  readonly #scriptTable: string;
  /** A transaction is open, as the server's last OK packet of a script's statement said. */
  #inTransaction = false;
  /** Autocommit is on, as the server's last OK packet of a script's statement said (a script may SET autocommit = 0). */
  #autocommit = true;

  constructor(connection: PoolConnection, ledger: LedgerSettings | null, cancelOptions: ConnectionOptions, init: readonly string[]) {
    this.#connection = connection;
    this.#ledger = ledger;
    this.#table = ledger ? escapeId(ledger.table) : '';
    this.#cancelOptions = cancelOptions;
    this.#init = init;
    const config = (connection as unknown as { connection?: { config?: { timezone?: unknown; database?: unknown } } }).connection?.config;
    this.#rules = { timezone: typeof config?.timezone === 'string' ? config.timezone : 'local', noBackslashEscapes: false };
    this.#database = typeof config?.database === 'string' && config.database !== '' ? config.database : null;
    this.#scriptTable = ledger === null ? '' : ledger.table.includes('.') || this.#database === null ? this.#table : `${escapeId(this.#database)}.${escapeId(ledger.table)}`;
  }

  /**
   * Makes the connection ready for jobs: on a new connection (`fresh`) the datasource's init
   * statements run; with the ledger, the SQL mode is read (NO_BACKSLASH_ESCAPES changes how
   * a string literal is written into the ledger's one-round-trip transaction).
   */
  async setUp(fresh: boolean): Promise<void> {
    if (fresh) for (const statement of this.#init) await this.#connection.query(statement);
    const [rows] = await this.#connection.query('SELECT @@SESSION.sql_mode AS mode, @@SESSION.max_allowed_packet AS packet');
    const { mode, packet } = (rows as Array<{ mode: unknown; packet: unknown }>)[0] ?? {};
    const noBackslashEscapes = typeof mode === 'string' && mode.includes('NO_BACKSLASH_ESCAPES');
    this.#rules = { ...this.#rules, noBackslashEscapes };
    if (Number(packet) > 0) this.#maxPacket = Number(packet);
  }

  /** Whether a statement text of these bytes fits in one packet. */
  #fits(text: string): boolean {
    return Buffer.byteLength(text, 'utf8') <= packetBudget(this.#maxPacket);
  }

  /** Throws the statement's own error when it can never be sent as a prepared statement. */
  #checkPacket(sql: string, params: StatementParams): void {
    const bytes = preparedBytes(sql, params);
    if (bytes > packetBudget(this.#maxPacket)) throw packetTooLarge(bytes, this.#maxPacket);
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

  async executeOnce(id: string, sql: string, params: StatementParams, keyed = false): Promise<OnceResult> {
    const record = this.#ledgerRows(this.#requireLedger(), ledgerIdsOf([{ id, keyed }]));
    const inline = inlineStatement(sql, params, this.#rules);
    const oneTrip = inline === null ? null : ledgerTransaction(record, [inline]);
    if (oneTrip === null || !this.#fits(oneTrip)) this.#checkPacket(sql, params);
    try {
      if (oneTrip !== null && this.#fits(oneTrip)) {
        // One round trip: the ledger row and the statement commit together or not at all.
        const [results] = await this.#connection.query(oneTrip);
        return { status: 'done', affectedRows: affectedRowsOf((results as unknown[])[FIRST_JOB_RESULT]) };
      }
      // Named params, placeholders that don't match the values, or values too large to write
      // into the text: the statement goes through the prepared-statement path (the server
      // reports a mismatch; values go as bytes), four round trips.
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

  /** The jobs' statements with their params written in; null when one's can't be (the caller then runs the jobs one by one). */
  #inlined(jobs: readonly BatchJob[]): string[] | null {
    const statements: string[] = [];
    for (const job of jobs) {
      const inline = inlineStatement(job.sql, job.params, this.#rules);
      if (inline === null) return null;
      statements.push(inline);
    }
    return statements;
  }

  async executeBatch(jobs: readonly BatchJob[], options: BatchOptions = {}): Promise<readonly number[] | null> {
    const ledger = this.#requireLedger();
    const statements = this.#inlined(jobs);
    if (statements === null) return null;
    const rows = this.#ledgerRows(ledger, ledgerIdsOf(jobs));
    if (options.coalesce === true) {
      const runs = coalesceRuns(jobs.map((job) => this.#rowShape(job)), COALESCE_LIMITS);
      if (merges(runs)) return this.#executeCoalesced(rows, statements, runs);
    }
    const text = ledgerTransaction(rows, statements);
    // Too large for one packet: one by one (each then fits, or fails alone as too large).
    if (!this.#fits(text)) return null;
    try {
      const [results] = await this.#connection.query(text);
      return (results as unknown[]).slice(FIRST_JOB_RESULT, FIRST_JOB_RESULT + jobs.length).map(affectedRowsOf);
    } catch (error) {
      await this.#rollbackAfter(error);
      throw error;
    }
  }

  async executeEach(jobs: readonly BatchJob[], options: EachOptions = {}): Promise<readonly EachResult[] | null> {
    const ledger = this.#requireLedger();
    const statements = this.#inlined(jobs);
    if (statements === null) return null;
    const ids = jobs.map((job) => job.id);
    const rows = jobs.map((job) => this.#ledgerRows(ledger, ledgerIdsOf([job])));
    // The first trip is the largest: too large for one packet, one by one.
    if (!this.#fits(eachTrip('START TRANSACTION', false, rows, statements, 0).statements.join('; '))) return null;
    return runEachUnderSavepoints({
      begin: 'START TRANSACTION',
      send: (trip) => this.#trip(trip),
      classify: (error) => classifyError(error, 'execute'),
      isLedgerDuplicate: (error, id) => (error as { errno?: number }).errno === DUPLICATE_KEY && String((error as { message?: unknown }).message).includes(id),
      rollback: async () => void (await this.#connection.query('ROLLBACK')),
    }, ids, rows, statements, options.cancelled);
  }

  /**
   * Statements in one query, stopped by the first that fails: the results of those that
   * completed before it are read from mysql2's query command (its promise API drops them with
   * the error). Without them the failure can't be placed: none are counted, and the caller
   * rolls back.
   */
  #trip(statements: readonly string[]): Promise<TripResult> {
    const core = (this.#connection as unknown as { connection: CoreConnection }).connection;
    return new Promise((resolve) => {
      const query = core.query(statements.join('; '), (error: unknown, results: unknown) => {
        if (error === null || error === undefined) {
          resolve({ affected: (Array.isArray(results) ? results : [results]).map(affectedRowsOf) });
          return;
        }
        const state = query as unknown as { _resultIndex?: unknown; _rows?: unknown };
        const done = typeof state._resultIndex === 'number' && Array.isArray(state._rows) ? (state._rows as unknown[]).slice(0, state._resultIndex) : [];
        const failed = statements[done.length];
        if (failed !== undefined) unquoteTrailer(error, failed, `; ${statements.slice(done.length + 1).join('; ')}`);
        resolve({ affected: done.map(affectedRowsOf), error });
      });
    });
  }

  /**
   * A job's single-row INSERT with its params written in (db/coalesce.ts): its text's shape
   * and placeholders are read once per text, then only its values are escaped. Null when it
   * can't share a statement.
   */
  #rowShape(job: BatchJob): InsertShape | null {
    const escapes = !this.#rules.noBackslashEscapes;
    const template = mysqlInsertShape(job.sql, escapes);
    if (template === null || isNamed(job.params)) return null;
    return inlinedShape(template, inspectStatement(job.sql, escapes).placeholders, job.params.map((value) => escapeLiteral(value, this.#rules)));
  }

  /**
   * A group commit with merged INSERTs: the ledger rows and the statements in one trip, the
   * transaction left open until each merged INSERT is seen to have inserted one row per job,
   * then COMMIT (a second trip). A lost connection rejects as it is; any other failure rolls
   * back and rejects with a CoalescedBatchError (the group may go again unmerged).
   */
  async #executeCoalesced(ledgerRows: string, statements: readonly string[], runs: readonly Run[]): Promise<readonly number[] | null> {
    const text = openLedgerTransaction(ledgerRows, runs.map((run) => run.sql ?? statements[run.from]!));
    if (!this.#fits(text)) return null;
    try {
      const [results] = await this.#connection.query(text);
      const counts = perJob(runs, (results as unknown[]).slice(FIRST_JOB_RESULT).map(affectedRowsOf));
      if (counts === null) throw new CoalescedBatchError();
      await this.#connection.query('COMMIT');
      return counts;
    } catch (error) {
      await this.#rollbackAfter(error);
      throw error instanceof CoalescedBatchError ? error : new CoalescedBatchError(error);
    }
  }

  async executeScriptStep(step: ScriptStep): Promise<ScriptStepResult> {
    const ledger = step.key === null ? null : this.#requireLedger();
    // LOCK TABLES: the ledger must be locked with the script's tables, or the session can't write its rows.
    const sql = ledger !== null && step.role === 'other' && inspectStatement(step.sql).keyword === 'LOCK' ? `${step.sql}\n, ${this.#scriptTable} WRITE` : step.sql;
    if (!this.#fits(sql)) throw packetTooLarge(Buffer.byteLength(sql, 'utf8'), this.#maxPacket);
    if (ledger === null || step.key === null) return this.#scriptQuery(sql);
    const row = insertLedgerRows(this.#scriptTable, ledger.spool, [step.key], (value) => escapeLiteral(value, this.#rules));
    // With autocommit off, a statement opens the script's transaction: its row joins it.
    const own = !this.#inTransaction && this.#autocommit;
    try {
      if (step.role !== 'transactional') {
        // Run as it is; then its row, in the transaction it left open or in one of its own.
        const result = await this.#scriptQuery(sql);
        await this.#writeScriptRow(row);
        return result;
      }
      // The row and the statement in one trip: in a transaction of their own, or in the script's open one.
      const text = own ? `START TRANSACTION; ${row}; ${sql}; COMMIT` : `${row}; ${sql}`;
      if (this.#fits(text)) {
        const { last, all } = await this.#scriptStatusOf(text, own ? 4 : 2);
        return { ...last, affectedRows: affectedRowsOf(all[own ? 2 : 1]) };
      }
      if (own) await this.#scriptQuery('START TRANSACTION');
      await this.#scriptQuery(row);
      const result = await this.#scriptQuery(sql);
      return own ? { ...(await this.#scriptQuery('COMMIT')), affectedRows: result.affectedRows } : result;
    } catch (error) {
      // A transaction this step opened is rolled back; the script's own is the script's (a reset ends it).
      if (own && step.role === 'transactional') await this.#rollbackAfter(error);
      const e = error as { errno?: number; message?: string };
      if (e.errno === DUPLICATE_KEY && String(e.message).includes(step.key)) return { affectedRows: 0, inTransaction: this.#inTransaction, doneBefore: true };
      throw error;
    }
  }

  /**
   * Writes the ledger row of a script's statement that ran outside the row's transaction: in
   * the transaction it left open, or in one of its own. The script may have dropped the
   * ledger table, or its database: the table is made again, and while the database is gone
   * the row is not written (the script's progress line still holds the statement).
   */
  async #writeScriptRow(row: string): Promise<void> {
    const write = () => (this.#inTransaction ? this.#scriptStatusOf(row, 1) : this.#scriptStatusOf(`START TRANSACTION; ${row}; COMMIT`, 3));
    const gone = (error: unknown) => (error as { errno?: number }).errno === NO_SUCH_DATABASE;
    try {
      await write();
    } catch (error) {
      if (gone(error)) return;
      if ((error as { errno?: number }).errno !== NO_SUCH_TABLE) throw error;
      if (!this.#inTransaction) await this.#rollbackAfter(error);
      try {
        await this.#connection.query(createLedgerTable(this.#scriptTable));
      } catch (created) {
        if (gone(created)) return;
        throw created;
      }
      await write();
    }
  }

  /** Runs one statement of a script alone; reads whether it left a transaction open. */
  async #scriptQuery(sql: string): Promise<ScriptStepResult> {
    const { last, all } = await this.#scriptStatusOf(sql, 1);
    return { ...last, affectedRows: affectedRowsOf(all[0]) };
  }

  /**
   * Sends `text` (`count` statements) and reads the server's status after the last: whether a
   * transaction is open. A statement that returns rows carries no status the driver shows,
   * so `DO 0` asks for it.
   */
  async #scriptStatusOf(text: string, count: number): Promise<{ last: ScriptStepResult; all: unknown[] }> {
    const [result] = await this.#connection.query(text);
    const all = count > 1 ? (result as unknown[]) : [result];
    let header = all.at(-1) as Partial<ResultSetHeader> | undefined;
    if (typeof header?.serverStatus !== 'number') {
      const [done] = await this.#connection.query('DO 0');
      header = done as ResultSetHeader;
    }
    this.#inTransaction = ((header.serverStatus ?? 0) & SERVER_STATUS_IN_TRANS) !== 0;
    this.#autocommit = ((header.serverStatus ?? 0) & SERVER_STATUS_AUTOCOMMIT) !== 0;
    return { last: { affectedRows: 0, inTransaction: this.#inTransaction, doneBefore: false }, all };
  }

  async scriptProgress(id: string): Promise<number> {
    this.#requireLedger();
    try {
      const [rows] = await this.#connection.query(selectScriptProgress(this.#scriptTable), [`${id}:%`]);
      const key = (rows as Array<{ id: string }>)[0]?.id;
      return key === undefined ? 0 : statementOfKey(key);
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (errno === NO_SUCH_TABLE || errno === NO_SUCH_DATABASE) return 0;
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
    return this.#pruneChunks(pruneLedgerRows(this.#table), [ledger.spool, beforeId]);
  }

  /** In the script's ledger table (a script's USE must not move it), in a transaction of its own. */
  async rememberKey(id: string): Promise<void> {
    const ledger = this.#requireLedger();
    await this.#writeScriptRow(insertKeyRowIfMissing(insertLedgerRows(this.#scriptTable, ledger.spool, [keyLedgerId(id)], (value) => escapeLiteral(value, this.#rules))));
  }

  async keyRemembered(id: string, withinMs: number): Promise<boolean> {
    this.#requireLedger();
    const [rows] = await this.#connection.query(selectKeyRow(this.#table), [keyLedgerId(id), withinMs * 1000]);
    return (rows as unknown[]).length > 0;
  }

  async pruneKeyRows(olderThanMs: number): Promise<number> {
    const ledger = this.#requireLedger();
    return this.#pruneChunks(pruneKeyRows(this.#table), [ledger.spool, olderThanMs * 1000]);
  }

  /** Runs a chunked DELETE until a chunk deletes fewer than PRUNE_CHUNK rows; resolves with how many went. */
  async #pruneChunks(sql: string, values: unknown[]): Promise<number> {
    let total = 0;
    for (;;) {
      const [result] = await this.#connection.query(sql, values);
      const n = (result as ResultSetHeader).affectedRows;
      total += n;
      if (n < PRUNE_CHUNK) return total;
    }
  }

  async execute(sql: string, params: StatementParams): Promise<ExecuteResult> {
    this.#checkPacket(sql, params);
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
    // Sent over max_allowed_packet, the server would drop the connection (a connection failure).
    this.#checkPacket(sql, params);
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
    const name = lockName(key);
    const connection = await mysql.createConnection(this.#cancelOptions);
    // Lost while idle (the server restarted): the lock went with it; the next call says so.
    connection.on('error', () => {});
    this.#lockConnection = connection;
    if ((await granted(connection, name)) && (await granted(this.#connection, sessionLockName(name)))) {
      this.#held = name;
      return true;
    }
    this.#dropLock();
    return false;
  }

  async unlock(key: LockKey): Promise<void> {
    const name = lockName(key);
    const connection = this.#lockConnection;
    this.#held = null;
    this.#lockConnection = null;
    try {
      await this.#connection.query('SELECT RELEASE_LOCK(?)', [sessionLockName(name)]);
      if (connection !== null) await connection.query('SELECT RELEASE_LOCK(?)', [name]);
    } finally {
      await connection?.end().catch(() => connection.destroy());
    }
  }

  /** Both connections answer, and each holds its GET_LOCK (a connection KILLed or lost while idle says no). */
  async holdsLock(): Promise<boolean> {
    const name = this.#held;
    const connection = this.#lockConnection;
    if (name === null || connection === null) return false;
    const mine = async (c: mysql.Connection | PoolConnection, lock: string) => {
      const [rows] = await c.query('SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS mine', [lock]);
      return Number((rows as Array<{ mine: unknown }>)[0]?.mine) === 1;
    };
    try {
      const answers = await Promise.all([mine(connection, name), mine(this.#connection, sessionLockName(name))]);
      return answers.every(Boolean);
    } catch {
      return false;
    }
  }

  /**
   * COM_RESET_CONNECTION (variables, autocommit, the SQL mode, temporary tables, table
   * locks, prepared statements: as on a new connection), the datasource's database selected
   * again (a reset keeps whatever a job's USE chose), then the init statements.
   */
  async reset(): Promise<void> {
    await this.#connection.reset();
    this.#inTransaction = false;
    this.#autocommit = true;
    if (this.#held !== null && !(await granted(this.#connection, sessionLockName(this.#held)))) {
      throw Object.assign(new Error(`Expected to take the lock ${sessionLockName(this.#held)} again after a session reset; another session holds it`), { code: 'LOCK_LOST', fatal: true });
    }
    if (this.#database !== null) await this.#connection.query(`USE ${escapeId(this.#database)}`);
    await this.setUp(true);
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

  /** Gives the connection back to the pool; a lock still held goes with its own connection. */
  release(): void {
    this.#connection.release();
    this.#dropLock();
  }

  destroy(): void {
    this.#connection.destroy();
    this.#dropLock();
  }

  #dropLock(): void {
    this.#lockConnection?.destroy();
    this.#lockConnection = null;
    this.#held = null;
  }
}
