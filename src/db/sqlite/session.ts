import { CoalescedBatchError, keyLedgerId, ledgerIdsOf, type BatchJob, type BatchOptions, type EachResult, type ExecuteResult, type LedgerSettings, type LockKey, type OnceResult, type ScriptStep, type ScriptStepResult, type Session, type StatementParams } from '../driver.js';
import { coalesceRuns, merges, perJob, type CoalesceLimits, type Run } from '../coalesce.js';
import { NOT_STATEMENT_PRIMARY, classifyError } from './classify.js';
import { sqliteInsertShape } from './insert-shape.js';
import type { ParamValue } from '../../spool/record.js';
import { INTERRUPTED, PROCESS_LOST, SqliteError } from './codes.js';
import { FileLock } from './lock.js';
import { SqliteProcess } from './process.js';

/**
 * A merged INSERT's rows and bound params at most: 500 rows (SQLITE_MAX_COMPOUND_SELECT's
 * default, which bounded a VALUES list before SQLite 3.8.8) and 999 params (the oldest
 * default of SQLITE_MAX_VARIABLE_NUMBER; 32,766 since 3.32).
 */
const COALESCE_LIMITS: CoalesceLimits = { maxRows: 500, maxPlaceholders: 999 };

/** A job's shape when its single-row INSERT binds exactly its positional params. */
function shapeOf(job: BatchJob) {
  const shape = Array.isArray(job.params) ? sqliteInsertShape(job.sql) : null;
  return shape !== null && shape.placeholders === job.params.length ? shape : null;
}

/** How a session's process opens the database (the child's `open` request). */
export interface OpenSettings {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly init: readonly string[];
  /** The ledger table, quoted; null without a ledger. */
  readonly ledgerTable: string | null;
}

/** The driver, as its sessions see it: it may keep a released session's process for the next session, and tracks the sessions it made. */
export interface SessionOwner {
  /** Takes a released session's process for reuse; false when it keeps one already. */
  keep(process: SqliteProcess): boolean;
  /** The session was released or dropped. */
  ended(session: SqliteSession): void;
}

/**
 * A value as SQLite stores it: a Date as ISO 8601 text in UTC with milliseconds
 * (`2024-05-01T12:00:00.000Z`: it sorts, SQLite's date functions read it, and `new Date(text)`
 * gives back the same instant), a boolean as 1 or 0; Buffers, bigints (INTEGER, exact),
 * numbers, strings and null as they are.
 */
export function sqliteValue(value: ParamValue): ParamValue {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

/** Params as the session's process binds them: `?` positional, `:name` (also `@name`, `$name`) from an object. */
export function sqliteParams(params: StatementParams): ParamValue[] | Record<string, ParamValue> {
  if (Array.isArray(params)) return (params as readonly ParamValue[]).map(sqliteValue);
  const out: Record<string, ParamValue> = {};
  for (const [name, value] of Object.entries(params as Readonly<Record<string, ParamValue>>)) out[name] = sqliteValue(value);
  return out;
}

/**
 * One SQLite connection, in a process of its own: statements run there, so the owner's event
 * loop never waits on them; cancel() kills that process (the only way to stop a statement
 * SQLite runs: better-sqlite3 has no interrupt), and the session opens a new one for its next
 * call, as a new connection (init statements again; SQLite rolled back the killed one's
 * transaction). The drain's lock is held by the owner's process (lock.ts), so it outlives that.
 */
export class SqliteSession implements Session {
  #process: SqliteProcess;
  /** The process being started again after a cancel (the next call waits for it). */
  #restarting: Promise<void> | null = null;
  readonly #open: OpenSettings;
  readonly #ledger: LedgerSettings | null;
  readonly #lock = new FileLock();
  readonly #owner: SessionOwner;
  #destroyed = false;

  /** A session on `process`, whose database is open (open(), or a released session's process). */
  constructor(process: SqliteProcess, open: OpenSettings, ledger: LedgerSettings | null, owner: SessionOwner) {
    this.#process = process;
    this.#open = open;
    this.#ledger = ledger;
    this.#owner = owner;
  }

  /** Starts a process and opens the database in it (init statements, the ledger table). */
  static async start(settings: OpenSettings): Promise<SqliteProcess> {
    const process = new SqliteProcess();
    try {
      await process.request('open', { ...settings });
    } catch (error) {
      await process.close();
      throw error;
    }
    return process;
  }

  /** The process to send to: the one started after a cancel, once it is open. */
  async #ready(): Promise<SqliteProcess> {
    if (this.#restarting !== null) await this.#restarting;
    if (this.#destroyed) throw new SqliteError(PROCESS_LOST, 'The SQLite session was dropped');
    return this.#process;
  }

  async #request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    return (await this.#ready()).request<T>(op, args);
  }

  #requireLedger(): { table: string; spool: string } {
    if (this.#ledger === null || this.#open.ledgerTable === null) throw new Error('This session has no ledger (the datasource has ledger: false)');
    return { table: this.#open.ledgerTable, spool: this.#ledger.spool };
  }

  execute(sql: string, params: StatementParams): Promise<ExecuteResult> {
    return this.#request('exec', { sql, params: sqliteParams(params) });
  }

  async executeOnce(id: string, sql: string, params: StatementParams, keyed = false): Promise<OnceResult> {
    const ledger = this.#requireLedger();
    try {
      return await this.#request<OnceResult>('once', { ...ledger, jobId: id, ids: ledgerIdsOf([{ id, keyed }]), sql, params: sqliteParams(params) });
    } catch (error) {
      // Stopped over its time limit: if its COMMIT made it before the kill, it ran.
      if ((error as { code?: unknown }).code === INTERRUPTED && (await this.isDone(id).catch(() => false))) return { status: 'done', affectedRows: 0 };
      throw error;
    }
  }

  executeBatch(jobs: readonly BatchJob[], options: BatchOptions = {}): Promise<readonly number[] | null> {
    const ledger = this.#requireLedger();
    if (options.coalesce === true) {
      const runs = coalesceRuns(jobs.map(shapeOf), COALESCE_LIMITS);
      if (merges(runs)) return this.#executeCoalesced(ledger, jobs, runs);
    }
    return this.#request('batch', { ...ledger, ids: ledgerIdsOf(jobs), jobs: jobs.map((job) => ({ id: job.id, sql: job.sql, params: sqliteParams(job.params) })) });
  }

  /**
   * The jobs under savepoints, in one request: the session's process runs the loop
   * (child-source.ts each). An error that is not a statement's own rolls it all back: a lost
   * process rejects as it is; anything else (transient, or the process killed for the time
   * limit) rejects too, and the drain runs the jobs one by one.
   */
  async executeEach(jobs: readonly BatchJob[]): Promise<readonly EachResult[] | null> {
    const ledger = this.#requireLedger();
    type Answer = { status: 'done'; affectedRows: number } | { status: 'done-before' } | { status: 'refused'; error: { code: string; message: string } };
    const answers = await this.#request<Answer[]>('each', { ...ledger, abandon: NOT_STATEMENT_PRIMARY, jobs: jobs.map((job) => ({ id: job.id, ids: ledgerIdsOf([job]), sql: job.sql, params: sqliteParams(job.params) })) });
    return answers.map((answer) => (answer.status === 'refused' ? { status: 'refused', error: new SqliteError(answer.error.code, answer.error.message) } : answer));
  }

  /**
   * A group commit with merged INSERTs: each merged one's params are its jobs' in order. The
   * session's process checks that it inserted one row per job before COMMIT (a BEFORE
   * trigger's RAISE(IGNORE) may skip a row). A lost process rejects as it is; any other
   * failure (all rolled back) with a CoalescedBatchError.
   */
  async #executeCoalesced(ledger: { table: string; spool: string }, jobs: readonly BatchJob[], runs: readonly Run[]): Promise<readonly number[]> {
    const statements = runs.map((run) => {
      const own = jobs.slice(run.from, run.from + run.count);
      if (run.sql === null) return { sql: own[0]!.sql, params: sqliteParams(own[0]!.params) };
      return { sql: run.sql, params: own.flatMap((job) => sqliteParams(job.params) as ParamValue[]), rows: run.count };
    });
    try {
      const affected = await this.#request<number[]>('batch', { ...ledger, ids: ledgerIdsOf(jobs), jobs: statements });
      // The process checked each merged INSERT's count before COMMIT.
      const counts = perJob(runs, affected);
      if (counts === null) throw new Error(`Expected each merged INSERT to have inserted one row per job; the session's process committed ${JSON.stringify(affected)}`);
      return counts;
    } catch (error) {
      if (classifyError(error, 'execute') === 'connection') throw error;
      throw new CoalescedBatchError(error);
    }
  }

  async stream(
    sql: string,
    params: StatementParams,
    onColumns: (columns: string[]) => void,
    onRow: (row: unknown[]) => Promise<void>,
  ): Promise<{ readonly rows: number; readonly affectedRows: number }> {
    const process = await this.#ready();
    return process.stream({ sql, params: sqliteParams(params) }, onColumns, async (rows) => {
      for (const row of rows) await onRow(row);
    });
  }

  executeScriptStep(step: ScriptStep): Promise<ScriptStepResult> {
    const ledger = step.key === null ? { table: '', spool: '' } : this.#requireLedger();
    return this.#request('step', { ...ledger, sql: step.sql, role: step.role, key: step.key });
  }

  scriptProgress(id: string): Promise<number> {
    return this.#request('progress', { table: this.#requireLedger().table, jobId: id });
  }

  isDone(id: string): Promise<boolean> {
    return this.#request('isDone', { table: this.#requireLedger().table, jobId: id });
  }

  pruneLedger(beforeId: string): Promise<number> {
    const ledger = this.#requireLedger();
    return this.#request('prune', { table: ledger.table, spool: ledger.spool, before: beforeId });
  }

  async rememberKey(id: string): Promise<void> {
    await this.#request('remember', { ...this.#requireLedger(), key: keyLedgerId(id) });
  }

  keyRemembered(id: string, withinMs: number): Promise<boolean> {
    return this.#request('keyHeld', { table: this.#requireLedger().table, key: keyLedgerId(id), withinMs });
  }

  pruneKeyRows(olderThanMs: number): Promise<number> {
    return this.#request('pruneKeys', { ...this.#requireLedger(), olderThanMs });
  }

  tryLock(key: LockKey): Promise<boolean> {
    // A throw in the executor (the lock file can't be opened) rejects.
    return new Promise((resolve) => {
      if (typeof key !== 'string') throw new TypeError(`Expected a SQLite lock key to be a string; got the bigint ${key}`);
      resolve(this.#lock.take(`${this.#open.path}.${key}`));
    });
  }

  /** The lock lives in this process (lock.ts); the session's own process must be alive too. */
  holdsLock(): Promise<boolean> {
    return Promise.resolve(this.#lock.held && !this.#destroyed && this.#restarting === null && this.#process.alive);
  }

  unlock(): Promise<void> {
    this.#lock.release();
    return Promise.resolve();
  }

  /**
   * Kills the session's process (its statement stops at once; SQLite rolls back its open
   * transaction on the next open) and starts a new one: the statement's call rejects with
   * SQLITE_INTERRUPT (the statement's failure, not the connection's); the next call runs on
   * the new process. When it can't be opened, the next call fails as a lost connection.
   */
  async cancel(): Promise<void> {
    const old = this.#process;
    const restart = (async () => {
      await old.kill(new SqliteError(INTERRUPTED, 'The statement was stopped: its SQLite session was ended (its transaction rolled back) when the time limit passed'));
      try {
        this.#process = await SqliteSession.start(this.#open);
      } catch {
        this.#destroyed = true;
      }
    })();
    this.#restarting = restart;
    await restart;
    if (this.#restarting === restart) this.#restarting = null;
  }

  /** As a new connection: the database closed and opened again in the same process (PRAGMAs, TEMP tables, ATTACHed databases gone), then the init statements. */
  async reset(): Promise<void> {
    await this.#request('reset');
  }

  /** Unlocks; the process (its connection clean: the drain resets a session a job changed) goes back to the driver for the next session, or ends. */
  release(): void {
    this.#lock.release();
    this.#owner.ended(this);
    if (this.#restarting === null && !this.#destroyed && this.#process.alive && this.#owner.keep(this.#process)) return;
    void this.#process.close();
  }

  destroy(): void {
    this.#owner.ended(this);
    this.#destroyed = true;
    this.#lock.release();
    void this.#process.kill(new SqliteError(PROCESS_LOST, 'The SQLite session was dropped'));
  }
}
