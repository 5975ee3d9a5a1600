import pg from 'pg';
import type { PoolClient, PoolConfig, QueryResult } from 'pg';
import { CoalescedBatchError, keyLedgerId, ledgerIdsOf, type BatchJob, type BatchOptions, type EachOptions, type EachResult, type ExecuteResult, type LedgerSettings, type LockKey, type OnceResult, type ScriptStep, type ScriptStepResult, type Session, type StatementParams } from '../driver.js';
import { coalesceRuns, inlinedShape, merges, perJob, type CoalesceLimits, type Run } from '../coalesce.js';
import type { InsertShape } from '../insert-shape.js';
import { postgresInsertShape } from './insert-shape.js';
import { runEachUnderSavepoints, type TripResult } from '../savepoints.js';
import { classifyError } from './classify.js';
import {
  FIRST_JOB_RESULT, PRUNE_CHUNK, createLedgerTable, insertLedgerRows, ledgerTransaction, openLedgerTransaction, pruneKeyRows, pruneLedgerRows, selectKeyRow, selectLedgerRow, selectScriptProgress, statementOfKey,
} from './ledger-sql.js';
import { hasDollarParams, inspectStatement, isNamed, qmarksOf, replacePlaceholders, runsInLedgerTransaction } from './statement.js';
import { boundValue, literalOf, quoteLiteral } from './values.js';

/** 23505 unique_violation; 42P01 undefined_table. */
const UNIQUE_VIOLATION = '23505';
const UNDEFINED_TABLE = '42P01';

/**
 * A merged INSERT's rows at most. Values are written into its text as literals (the group
 * commit's simple protocol), so PostgreSQL's 65,535 bound params never apply.
 */
const COALESCE_LIMITS: CoalesceLimits = { maxRows: 1000, maxPlaceholders: Infinity };

/** Rows per FETCH of a captured SELECT's cursor. */
const FETCH_ROWS = 500;

/** The rows a command changed (0 for a result set, as the driver boundary counts). */
function affectedOf(result: QueryResult | undefined): number {
  if (result === undefined) return 0;
  return ['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'COPY'].includes(result.command) ? (result.rowCount ?? 0) : 0;
}

/** The rows a command changed, from its CommandComplete tag (`INSERT 0 5`, `UPDATE 3`), as affectedOf() counts them. */
export function affectedOfTag(tag: string): number {
  const m = /^(INSERT \d+|UPDATE|DELETE|MERGE|COPY) (\d+)$/.exec(tag);
  return m ? Number(m[2]) : 0;
}

/** An advisory key; a GET_LOCK name (MySQL's) is a caller's mistake. */
function advisoryKey(key: LockKey): bigint {
  if (typeof key !== 'bigint') throw new TypeError(`Expected a PostgreSQL lock key to be a bigint; got the string ${JSON.stringify(key)}`);
  return key;
}

/** The two int4 halves of a key: the job connection's own lock, in the two-int key space (apart from the bigint one). */
function halves(key: bigint): [number, number] {
  return [Number(BigInt.asIntN(32, key >> 32n)), Number(BigInt.asIntN(32, key))];
}

/**
 * The statement with its params written in as literals, for one simple-protocol round trip;
 * null unless it is one statement that can share a transaction, its `?` match its values,
 * it has no `$n` of its own and every value can be written (else: bound, one by one).
 */
export function inlineStatement(sql: string, params: StatementParams): string | null {
  if (!runsInLedgerTransaction(inspectStatement(sql)) || hasDollarParams(sql)) return null;
  let writable = true;
  const { text, matched } = replacePlaceholders(sql, params, (value) => literalOf(value) ?? ((writable = false), ''));
  return matched && writable ? text : null;
}

/**
 * A job's single-row INSERT with its params written in (db/coalesce.ts): its text's shape and
 * placeholders are read once per text, then only its values are written. Null when it can't
 * share a statement.
 */
function rowShape(job: BatchJob): InsertShape | null {
  const template = postgresInsertShape(job.sql);
  if (template === null || isNamed(job.params)) return null;
  const literals: string[] = [];
  for (const value of job.params) {
    const literal = literalOf(value);
    if (literal === null) return null;
    literals.push(literal);
  }
  return inlinedShape(template, qmarksOf(job.sql).map((t) => t.start), literals);
}

/** Transaction status from the server's last ReadyForQuery: idle, in a transaction, in a failed one; `?` after an error, until the next arrives. */
type TxStatus = 'I' | 'T' | 'E' | '?';

type ReadyListener = (message: { status?: string }) => void;
type CompleteListener = (message: { text?: string }) => void;
interface ProtocolConnection {
  on(event: 'readyForQuery', listener: ReadyListener): void;
  off(event: 'readyForQuery', listener: ReadyListener): void;
  on(event: 'commandComplete', listener: CompleteListener): void;
  off(event: 'commandComplete', listener: CompleteListener): void;
}

/** One pooled connection, as a run uses it. */
export class PostgresSession implements Session {
  readonly #client: PoolClient;
  readonly #ledger: LedgerSettings | null;
  /** The ledger table, quoted and schema-qualified. */
  readonly #table: string;
  readonly #single: PoolConfig;
  readonly #init: readonly string[];
  #status: TxStatus = 'I';
  /** ReadyForQuery messages seen: tells whether a failed query's own has come yet. */
  #readyCount = 0;
  /** Waiting for the ReadyForQuery of a query that failed (#settled()). */
  #waiters: Array<() => void> = [];
  readonly #onReady = (message: { status?: string }) => {
    this.#readyCount++;
    this.#status = message.status === 'T' || message.status === 'E' ? message.status : 'I';
    this.#wake();
  };
  readonly #wake = () => {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  };
  /** The datasource's lock is held on a connection of its own: DISCARD ALL (reset) releases the job connection's advisory locks. */
  #lockClient: pg.Client | null = null;
  #held: bigint | null = null;
  #released = false;

  constructor(client: PoolClient, ledger: LedgerSettings | null, table: string, single: PoolConfig, init: readonly string[]) {
    this.#client = client;
    this.#ledger = ledger;
    this.#table = table;
    this.#single = single;
    this.#init = init;
    this.#connection().on('readyForQuery', this.#onReady);
    client.on('end', this.#wake);
    client.on('error', this.#wake);
  }

  /** pg's protocol connection under the client: its ReadyForQuery messages carry the transaction status. */
  #connection(): ProtocolConnection {
    return (this.#client as unknown as { connection: ProtocolConnection }).connection;
  }

  /**
   * Resolves once the transaction status is known: after a failed query, when its
   * ReadyForQuery has come (or the connection has ended: then the next query fails anyway).
   */
  #settled(): Promise<void> {
    if (this.#status !== '?') return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** A transaction is open (or may be: after an error, until the server's next ReadyForQuery). */
  #inTransaction(): boolean {
    return this.#status !== 'I';
  }

  /** Runs the init statements (a new connection, or after a reset). */
  async setUp(): Promise<void> {
    for (const statement of this.#init) await this.#query(statement);
  }

  /**
   * A query. pg rejects at the server's ErrorResponse, before its ReadyForQuery: until that
   * arrives (it may have already, in the same packet) the transaction status is unknown.
   * The session sends one query at a time, so the next ReadyForQuery is this query's.
   */
  async #query<T = QueryResult>(text: string | pg.QueryConfig, values?: unknown[]): Promise<T> {
    const before = this.#readyCount;
    try {
      return (await this.#client.query(text as string, values)) as T;
    } catch (error) {
      if (this.#readyCount === before) this.#status = '?';
      // pg puts the SQLSTATE in `code`; the failure records it as sqlState too, as for MySQL.
      const e = error as { code?: unknown; sqlState?: unknown };
      if (error instanceof pg.DatabaseError && typeof e.code === 'string' && e.sqlState === undefined) e.sqlState = e.code;
      throw error;
    }
  }

  #requireLedger(): LedgerSettings {
    if (!this.#ledger) throw new Error('This session has no ledger (the datasource has ledger: false)');
    return this.#ledger;
  }

  #ledgerRows(ids: readonly string[]): string {
    return insertLedgerRows(this.#table, this.#requireLedger().spool, ids, quoteLiteral);
  }

  /** After a failure in a transaction this session opened: rolled back, unless the connection is gone (the server rolls back). */
  async #rollbackAfter(error: unknown): Promise<void> {
    if (classifyError(error, 'execute') === 'connection') throw error;
    await this.#query('ROLLBACK');
  }

  /** A unique violation on the ledger's key: its id was recorded before. */
  #isLedgerDuplicate(error: unknown, id: string): boolean {
    const e = error as { code?: unknown; detail?: unknown };
    return e.code === UNIQUE_VIOLATION && typeof e.detail === 'string' && e.detail.includes(`(${id})`);
  }

  async execute(sql: string, params: StatementParams): Promise<ExecuteResult> {
    const { text, values } = replacePlaceholders(sql, params, (_, n) => `$${n}`);
    // The extended protocol always: one statement per job, as a prepared statement takes it.
    const result = await this.#query<QueryResult>({ text, values: values.map(boundValue), queryMode: 'extended' } as pg.QueryConfig);
    return { affectedRows: affectedOf(result) };
  }

  async executeOnce(id: string, sql: string, params: StatementParams, keyed = false): Promise<OnceResult> {
    const record = this.#ledgerRows(ledgerIdsOf([{ id, keyed }]));
    const inline = inlineStatement(sql, params);
    try {
      if (inline !== null) {
        // One round trip: the ledger row and the statement commit together or not at all.
        const results = await this.#query<QueryResult[]>(ledgerTransaction(record, [inline]));
        return { status: 'done', affectedRows: affectedOf(results[FIRST_JOB_RESULT]) };
      }
      await this.#query('BEGIN');
      await this.#query(record);
      const result = await this.execute(sql, params);
      await this.#query('COMMIT');
      return { status: 'done', affectedRows: result.affectedRows };
    } catch (error) {
      await this.#rollbackAfter(error);
      if (this.#isLedgerDuplicate(error, id) && (await this.isDone(id))) return { status: 'done-before' };
      throw error;
    }
  }

  /** The jobs' statements with their params written in; null when one's can't be (the caller then runs the jobs one by one). */
  #inlined(jobs: readonly BatchJob[]): string[] | null {
    const statements: string[] = [];
    for (const job of jobs) {
      const inline = inlineStatement(job.sql, job.params);
      if (inline === null) return null;
      statements.push(inline);
    }
    return statements;
  }

  async executeBatch(jobs: readonly BatchJob[], options: BatchOptions = {}): Promise<readonly number[] | null> {
    this.#requireLedger();
    const statements = this.#inlined(jobs);
    if (statements === null) return null;
    if (options.coalesce === true) {
      const runs = coalesceRuns(jobs.map(rowShape), COALESCE_LIMITS);
      if (merges(runs)) return this.#executeCoalesced(jobs, statements, runs);
    }
    try {
      const results = await this.#query<QueryResult[]>(ledgerTransaction(this.#ledgerRows(ledgerIdsOf(jobs)), statements));
      return results.slice(FIRST_JOB_RESULT, FIRST_JOB_RESULT + jobs.length).map(affectedOf);
    } catch (error) {
      await this.#rollbackAfter(error);
      throw error;
    }
  }

  async executeEach(jobs: readonly BatchJob[], options: EachOptions = {}): Promise<readonly EachResult[] | null> {
    this.#requireLedger();
    const statements = this.#inlined(jobs);
    if (statements === null) return null;
    const ids = jobs.map((job) => job.id);
    return runEachUnderSavepoints({
      begin: 'BEGIN',
      send: (trip) => this.#trip(trip),
      classify: (error) => classifyError(error, 'execute'),
      isLedgerDuplicate: (error, id) => this.#isLedgerDuplicate(error, id),
      rollback: async () => void (await this.#query('ROLLBACK')),
    }, ids, jobs.map((job) => this.#ledgerRows(ledgerIdsOf([job]))), statements, options.cancelled);
  }

  /**
   * Statements in one simple query, stopped by the first that fails: the server's
   * CommandComplete messages say how many completed before it, and what each changed.
   */
  async #trip(statements: readonly string[]): Promise<TripResult> {
    const tags: string[] = [];
    const onComplete: CompleteListener = (message) => tags.push(message.text ?? '');
    this.#connection().on('commandComplete', onComplete);
    try {
      await this.#query(statements.join('; '));
      return { affected: tags.map(affectedOfTag) };
    } catch (error) {
      return { affected: tags.map(affectedOfTag), error };
    } finally {
      this.#connection().off('commandComplete', onComplete);
    }
  }

  /**
   * A group commit with merged INSERTs: BEGIN, the ledger rows and the statements in one
   * trip, the transaction left open until each merged INSERT is seen to have inserted one row
   * per job (a BEFORE trigger returning NULL, a rule or an INSTEAD OF trigger may make it
   * fewer), then COMMIT. A lost connection rejects as it is; any other failure rolls back
   * and rejects with a CoalescedBatchError (the group may go again unmerged).
   */
  async #executeCoalesced(jobs: readonly BatchJob[], statements: readonly string[], runs: readonly Run[]): Promise<readonly number[]> {
    try {
      const results = await this.#query<QueryResult[]>(openLedgerTransaction(this.#ledgerRows(ledgerIdsOf(jobs)), runs.map((run) => run.sql ?? statements[run.from]!)));
      const counts = perJob(runs, results.slice(FIRST_JOB_RESULT).map(affectedOf));
      if (counts === null) throw new CoalescedBatchError();
      await this.#query('COMMIT');
      return counts;
    } catch (error) {
      await this.#rollbackAfter(error);
      throw error instanceof CoalescedBatchError ? error : new CoalescedBatchError(error);
    }
  }

  async stream(
    sql: string,
    params: StatementParams,
    onColumns: (columns: string[]) => void,
    onRow: (row: unknown[]) => Promise<void>,
  ): Promise<{ rows: number; affectedRows: number }> {
    const info = inspectStatement(sql);
    if (info.multiple) throw Object.assign(new Error('Expected one statement to capture the result of; found several'), { code: 'MULTIPLE_STATEMENTS' });
    const { text, values } = replacePlaceholders(sql, params, (_, n) => `$${n}`);
    const bound = values.map(boundValue);
    const readOnly = ['SELECT', 'VALUES', 'TABLE', 'WITH'].includes(info.keyword) && !info.words.some((w) => ['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'INTO'].includes(w));
    if (!readOnly) {
      // A data change with RETURNING can't be a cursor's: its rows come in one result.
      const result = await this.#query<QueryResult>({ text, values: bound, rowMode: 'array', queryMode: 'extended' } as pg.QueryConfig);
      onColumns(result.fields.map((f) => f.name));
      for (const row of result.rows as unknown[][]) await onRow(row);
      return { rows: result.rows.length, affectedRows: affectedOf(result) };
    }
    // A server-side cursor, FETCH_ROWS at a time: never the whole result in memory.
    await this.#settled();
    const own = this.#status === 'I';
    if (own) await this.#query('BEGIN');
    try {
      await this.#query({ text: `DECLARE querybatch_stream NO SCROLL CURSOR FOR ${text}`, values: bound, queryMode: 'extended' } as pg.QueryConfig);
      let rows = 0;
      let first = true;
      for (;;) {
        const page = await this.#query<QueryResult>({ text: `FETCH ${FETCH_ROWS} FROM querybatch_stream`, rowMode: 'array' } as pg.QueryConfig);
        if (first) onColumns(page.fields.map((f) => f.name));
        first = false;
        for (const row of page.rows as unknown[][]) {
          await onRow(row);
          rows++;
        }
        if (page.rows.length < FETCH_ROWS) break;
      }
      await this.#query('CLOSE querybatch_stream');
      if (own) await this.#query('COMMIT');
      return { rows, affectedRows: 0 };
    } catch (error) {
      if (own) await this.#rollbackAfter(error);
      throw error;
    }
  }

  async executeScriptStep(step: ScriptStep): Promise<ScriptStepResult> {
    await this.#settled();
    if (step.key === null) return this.#scriptQuery(step.sql);
    this.#requireLedger();
    if (step.role !== 'transactional') {
      // Run as it is; then its row, in the transaction it left open or on its own.
      const result = await this.#scriptQuery(step.sql);
      const written = await this.#writeScriptRow(step.key);
      return { ...result, inTransaction: this.#inTransaction(), doneBefore: !written };
    }
    if (this.#status === 'I') {
      // A transaction of its own: the row and the statement in one round trip.
      try {
        const results = await this.#query<QueryResult[]>(ledgerTransaction(this.#ledgerRows([step.key]), [step.sql]));
        return { affectedRows: affectedOf(results[FIRST_JOB_RESULT]), inTransaction: false, doneBefore: false };
      } catch (error) {
        await this.#rollbackAfter(error);
        if (this.#isLedgerDuplicate(error, step.key)) return { affectedRows: 0, inTransaction: false, doneBefore: true };
        throw error;
      }
    }
    // In the script's transaction: a failed INSERT would abort it, so the row goes in only if new.
    if (!(await this.#writeScriptRow(step.key))) return { affectedRows: 0, inTransaction: this.#inTransaction(), doneBefore: true };
    return this.#scriptQuery(step.sql);
  }

  /**
   * Writes a script statement's ledger row (in the open transaction, or on its own); false
   * when the ledger holds it already. A script that dropped the ledger table gets it back.
   */
  async #writeScriptRow(key: string): Promise<boolean> {
    const insert = `${this.#ledgerRows([key])} ON CONFLICT (id) DO NOTHING`;
    try {
      return ((await this.#query<QueryResult>(insert)).rowCount ?? 0) > 0;
    } catch (error) {
      await this.#settled();
      if ((error as { code?: unknown }).code !== UNDEFINED_TABLE || this.#status === 'T' || this.#status === 'E') throw error;
      await this.#query(createLedgerTable(this.#table));
      return ((await this.#query<QueryResult>(insert)).rowCount ?? 0) > 0;
    }
  }

  /** One statement of a script, alone (simple protocol: no params); whether it left a transaction open. */
  async #scriptQuery(sql: string): Promise<ScriptStepResult> {
    const result = await this.#query<QueryResult | QueryResult[]>(sql);
    const last = Array.isArray(result) ? result.at(-1) : result;
    return { affectedRows: affectedOf(last), inTransaction: this.#inTransaction(), doneBefore: false };
  }

  async scriptProgress(id: string): Promise<number> {
    this.#requireLedger();
    try {
      const result = await this.#query<QueryResult<{ id: string }>>(selectScriptProgress(this.#table), [`${id}:%`]);
      const key = result.rows[0]?.id;
      return key === undefined ? 0 : statementOfKey(key);
    } catch (error) {
      if ((error as { code?: unknown }).code === UNDEFINED_TABLE) return 0;
      throw error;
    }
  }

  async isDone(id: string): Promise<boolean> {
    this.#requireLedger();
    return ((await this.#query<QueryResult>(selectLedgerRow(this.#table), [id])).rowCount ?? 0) > 0;
  }

  async pruneLedger(beforeId: string): Promise<number> {
    const ledger = this.#requireLedger();
    return this.#pruneChunks(pruneLedgerRows(this.#table), [ledger.spool, beforeId]);
  }

  /** After a script's end (no transaction open): in a transaction of its own. */
  async rememberKey(id: string): Promise<void> {
    this.#requireLedger();
    await this.#settled();
    await this.#writeScriptRow(keyLedgerId(id));
  }

  async keyRemembered(id: string, withinMs: number): Promise<boolean> {
    this.#requireLedger();
    return ((await this.#query<QueryResult>(selectKeyRow(this.#table), [keyLedgerId(id), withinMs])).rowCount ?? 0) > 0;
  }

  async pruneKeyRows(olderThanMs: number): Promise<number> {
    const ledger = this.#requireLedger();
    return this.#pruneChunks(pruneKeyRows(this.#table), [ledger.spool, olderThanMs]);
  }

  /** Runs a chunked DELETE until a chunk deletes fewer than PRUNE_CHUNK rows; resolves with how many went. */
  async #pruneChunks(sql: string, values: unknown[]): Promise<number> {
    let total = 0;
    for (;;) {
      const n = (await this.#query<QueryResult>(sql, values)).rowCount ?? 0;
      total += n;
      if (n < PRUNE_CHUNK) return total;
    }
  }

  async tryLock(key: LockKey): Promise<boolean> {
    const k = advisoryKey(key);
    const client = new pg.Client(this.#single);
    // Lost while idle (the server restarted): the lock went with it; the next call says so.
    client.on('error', () => {});
    this.#lockClient = client;
    try {
      await client.connect();
      const outer = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [k.toString()]);
      if (outer.rows[0]?.ok === true && (await this.#takeSessionLock(k))) {
        this.#held = k;
        return true;
      }
    } catch (error) {
      this.#dropLock();
      throw error;
    }
    this.#dropLock();
    return false;
  }

  /**
   * The job connection's own lock beside the datasource's: while a dead runner's last
   * statement still runs on the server, its session holds this one, so no other runner
   * starts before that statement ends. Taken again after each reset.
   */
  async #takeSessionLock(key: bigint): Promise<boolean> {
    const result = await this.#query<QueryResult<{ ok: boolean }>>('SELECT pg_try_advisory_lock($1::int4, $2::int4) AS ok', halves(key));
    return result.rows[0]?.ok === true;
  }

  async unlock(key: LockKey): Promise<void> {
    const k = advisoryKey(key);
    const client = this.#lockClient;
    this.#held = null;
    this.#lockClient = null;
    try {
      await this.#query('SELECT pg_advisory_unlock($1::int4, $2::int4)', halves(k));
      if (client !== null) await client.query('SELECT pg_advisory_unlock($1::bigint)', [k.toString()]);
    } finally {
      await client?.end().catch(() => {});
    }
  }

  /** Both connections answer, and each holds its advisory lock (a backend terminated or lost while idle says no). */
  async holdsLock(): Promise<boolean> {
    const client = this.#lockClient;
    if (this.#held === null || client === null) return false;
    const text = "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted";
    try {
      const [outer, inner] = await Promise.all([client.query<{ n: number }>(text), this.#query<QueryResult<{ n: number }>>(text)]);
      return (outer.rows[0]?.n ?? 0) > 0 && (inner.rows[0]?.n ?? 0) > 0;
    } catch {
      return false;
    }
  }

  /**
   * DISCARD ALL (settings, temporary tables, prepared statements, cursors, LISTEN, advisory
   * locks: as on a new connection) after rolling back a transaction a job or script left
   * open (DISCARD ALL can't run in one); then the job connection's lock again and the init
   * statements.
   */
  async reset(): Promise<void> {
    await this.#settled();
    if (this.#inTransaction()) await this.#query('ROLLBACK');
    await this.#query('DISCARD ALL');
    if (this.#held !== null && !(await this.#takeSessionLock(this.#held))) {
      throw Object.assign(new Error('Expected to take the job connection\'s advisory lock again after a session reset; another session holds it'), { code: 'LOCK_LOST', fatal: true });
    }
    await this.setUp();
  }

  /**
   * pg_cancel_backend from a connection of its own (this one is busy with the statement).
   * If that fails, the session is dropped: the server ends the statement when it finds the
   * client gone.
   */
  async cancel(): Promise<void> {
    const pid = (this.#client as unknown as { processID?: number }).processID;
    const killer = new pg.Client(this.#single);
    killer.on('error', () => {});
    try {
      await killer.connect();
      await killer.query('SELECT pg_cancel_backend($1)', [pid]);
    } catch {
      this.destroy();
    } finally {
      await killer.end().catch(() => {});
    }
  }

  release(): void {
    this.#giveBack(false);
  }

  destroy(): void {
    this.#giveBack(true);
  }

  #giveBack(destroy: boolean): void {
    this.#dropLock();
    if (this.#released) return;
    this.#released = true;
    this.#connection().off('readyForQuery', this.#onReady);
    this.#client.off('end', this.#wake);
    this.#client.off('error', this.#wake);
    this.#wake();
    // A connection left in a transaction is not given back as it is.
    this.#client.release(destroy || this.#inTransaction() ? true : undefined);
  }

  #dropLock(): void {
    const client = this.#lockClient;
    this.#lockClient = null;
    this.#held = null;
    if (client !== null) void client.end().catch(() => {});
  }
}
