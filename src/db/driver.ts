import type { ParamValue } from '../spool/record.js';

/**
 * The database boundary. The runner and the spool writer see a database only through these
 * interfaces: they never import a dialect's module. Each dialect (db/mysql/, and the
 * engines that come next) implements them and registers itself by URL scheme
 * (db/registry.ts).
 */

/** A statement's parameters: positional (`?`) or named (`:name`). */
export type StatementParams = readonly ParamValue[] | Readonly<Record<string, ParamValue>>;

/**
 * How a failure reads to the runner: `connection` (try again later), `sql` (the statement's
 * fault: failed/), or `transient` (the server rolled the statement back for a reason that
 * passes, a deadlock or a lock wait timeout, and says to run it again: retried within the run).
 */
export type ErrorClass = 'connection' | 'sql' | 'transient';

/**
 * The key of the lock that lets one runner at a time drain a datasource, across processes
 * and hosts: a name (MySQL/MariaDB `GET_LOCK`) or a 64-bit integer (PostgreSQL advisory
 * locks). Opaque to the runner: it takes it from the dialect and hands it back to the session.
 */
export type LockKey = string | bigint;

/** What a dialect reads from a statement's text alone. */
export interface StatementTraits {
  /** The first keyword, upper-cased ('' when the text holds no code). */
  readonly keyword: string;
  /**
   * One statement that runs inside a transaction and leaves it open: it can share the
   * ledger's transaction, so it runs exactly once. False for a statement that commits
   * implicitly (DDL), controls transactions itself, can't be known from its text, or for
   * several statements.
   */
  readonly transactional: boolean;
  /**
   * It may leave state behind in the session (a variable, autocommit, the current database,
   * a temporary table, a lock): the session is reset before the next job runs on it.
   */
  readonly changesSession: boolean;
}

/** Digits of a statement's number in its ledger key: up to 999,999,999 statements, and keys sort by number. */
const STATEMENT_DIGITS = 9;

/**
 * The ledger key of statement `index` (1-based) of script `id`. It sorts after the script's
 * id, so the prune (ids before the oldest pending job) never takes a pending script's keys.
 */
export function scriptStatementKey(id: string, index: number): string {
  return `${id}:${String(index).padStart(STATEMENT_DIGITS, '0')}`;
}

/**
 * The ledger row that remembers that a job spooled with an idempotency key committed
 * (spool/keys.ts): `k:` and the job's id, written in the same transaction as the job's own
 * row. A job's id starts with 0-7, so this sorts after every job id and script key: the
 * prune by id (ids before the oldest pending job) never takes it; it is pruned by age
 * instead (Session.pruneKeyRows, keyRetentionMs). Pure.
 */
export function keyLedgerId(id: string): string {
  return `k:${id}`;
}

/** The ledger rows a transaction of these jobs records: each job's id, and the key row of a keyed one after it. Pure. */
export function ledgerIdsOf(jobs: readonly { readonly id: string; readonly keyed?: boolean }[]): string[] {
  return jobs.flatMap((job) => (job.keyed === true ? [job.id, keyLedgerId(job.id)] : [job.id]));
}

/** A statement of a script, as the dialect's splitter found it. */
export interface ScriptStatement {
  /** The statement's text, without its delimiter. */
  readonly sql: string;
  /** 1-based position among the script's statements. */
  readonly index: number;
  /** 1-based line of the script where the statement starts. */
  readonly line: number;
}

/** Splits a script as it is read: push() returns the statements a piece of text completed, end() the last one. */
export interface ScriptSplitter {
  push(text: string): ScriptStatement[];
  end(): ScriptStatement[];
}

/**
 * How a script runs a statement (run/script.ts):
 * - `session`: it only sets the session (SET, USE): no ledger row; after a crash it runs
 *   again before the script resumes, so the rest of the script sees the session it set;
 * - `control`: transaction control (BEGIN, COMMIT, ROLLBACK, …): run as it is, no ledger row;
 * - `transactional`: its ledger row goes in its own transaction (the script's, when one is open);
 * - `other`: it may commit by itself (DDL, CALL, LOCK TABLES): with the ledger, cut short it is uncertain.
 */
export type ScriptRole = 'session' | 'control' | 'transactional' | 'other';

/**
 * What a dialect knows without a connection: pure and cheap, so that it can be asked before
 * any connection is made (the spool writer asks whether a job may share a segment).
 */
export interface Dialect {
  /** A short name for messages: `mysql`. */
  readonly name: string;
  /**
   * `phase`: an error while connecting is always a connection failure; during a statement it
   * depends on the error. `transient` only for an error after which none of the statement's
   * effects remain (the server rolled back its statement or its transaction).
   */
  classifyError(error: unknown, phase: 'connect' | 'execute'): ErrorClass;
  inspect(sql: string): StatementTraits;
  /** The key of the lock for datasource `datasource` of the spool `spoolId`. */
  lockKey(spoolId: string, datasource: string): LockKey;
  /** A new splitter for a script in this dialect (quotes, comments, delimiters). */
  scriptSplitter(): ScriptSplitter;
  scriptRole(sql: string): ScriptRole;
  /**
   * Coalescing (issue 15): the text before a single-row INSERT's row (db/insert-shape.ts),
   * the same for every job whose INSERT may share one multi-row INSERT with it; null when it
   * can't share one. The drain counts a group's statements with it (run/group-fill.ts); the
   * session decides what it merges. Absent: nothing merges.
   */
  insertPrefix?(sql: string): string | null;
}

/** What a driver can do beyond running one statement at a time. */
export interface DriverCapabilities {
  /** executeBatch() can run several jobs in one ledger transaction and one round trip (else it always resolves null). */
  readonly groupCommit: boolean;
  /** stream() hands a result's rows over one at a time (captured results of background SELECTs). */
  readonly streaming: boolean;
}

/** The ledger of one spool in one database: which job ids have committed. */
export interface LedgerSettings {
  /** Table name, `name` or `database.name`. */
  readonly table: string;
  /** The spool's id (spool/.id): several spools may share one database. */
  readonly spool: string;
}

/** What a driver is made from: the datasource's URL and options (checked by the driver's factory), and its ledger. */
export interface DriverSettings {
  readonly url: string;
  /** The home directory (absolute): an embedded database's relative path is read from it. */
  readonly home: string;
  /** Statements run on every new connection and after every reset (`datasources.<name>.init`). */
  readonly init: readonly string[];
  readonly options: Readonly<Record<string, unknown>>;
  readonly ledger: LedgerSettings | null;
}

/** One database, as the runner uses it: sessions taken one per run. */
export interface Driver {
  readonly dialect: Dialect;
  readonly capabilities: DriverCapabilities;
  /**
   * Takes one session for a run. Rejects when the database cannot be reached. With a
   * ledger, the ledger table is created if missing (once per driver).
   */
  connect(): Promise<Session>;
  /** Closes every connection the driver holds. */
  close(): Promise<void>;
}

export interface ExecuteResult {
  readonly affectedRows: number;
}

/** What executeOnce() found: it ran the statement now, or the ledger says it ran before. */
export type OnceResult = { readonly status: 'done'; readonly affectedRows: number } | { readonly status: 'done-before' };

/** What executeEach() came to for one job: it ran (in the shared transaction), the ledger says it ran before, or its statement was refused (`error`: the driver's). */
export type EachResult = OnceResult | { readonly status: 'refused'; readonly error: unknown };

/** How executeEach() runs. */
export interface EachOptions {
  /**
   * Asked after a statement failed: true when the group's time limit passed and the
   * statement was stopped for it. Then nothing goes on: all is rolled back and the call rejects.
   */
  readonly cancelled?: () => boolean;
}

/** A job of a group commit. */
export interface BatchJob {
  readonly id: string;
  readonly sql: string;
  readonly params: StatementParams;
  /** Spooled with an idempotency key: its key row (keyLedgerId) commits with it. */
  readonly keyed?: boolean;
}

/** How a group commit runs. */
export interface BatchOptions {
  /**
   * Coalescing (issue 15): consecutive single-row INSERTs of constants with the same text
   * before their rows run as one multi-row INSERT (db/coalesce.ts). Each job keeps its
   * ledger row and its affected rows (1); when the merged statement's count is not one row
   * per job, it all rolls back and rejects with a CoalescedBatchError. Default false.
   */
  readonly coalesce?: boolean;
}

/**
 * A group commit that ran some jobs merged (BatchOptions.coalesce) failed with an SQL error
 * (`cause`: the driver's), or its figures could not be shared out job by job (`cause`
 * undefined). Nothing of it remains; the group may go again unmerged. Never for a lost
 * connection: that error comes as it is.
 */
export class CoalescedBatchError extends Error {
  constructor(cause?: unknown) {
    super(cause === undefined ? 'A merged INSERT did not insert one row per job: its figures can\'t be shared out, so its jobs run unmerged' : `A merged INSERT failed: ${cause instanceof Error ? cause.message : JSON.stringify(cause)}`, { cause });
    this.name = 'CoalescedBatchError';
  }
}

/** A script's statement, as the runner sends it. `key`: its ledger key (scriptStatementKey), or null when the ledger does not record it. */
export interface ScriptStep {
  readonly sql: string;
  readonly role: ScriptRole;
  readonly key: string | null;
}

export interface ScriptStepResult {
  readonly affectedRows: number;
  /** A transaction is open on the session after the statement: what it did commits or rolls back with it. */
  readonly inTransaction: boolean;
  /** The ledger holds its key already: it ran before, nothing ran now. */
  readonly doneBefore: boolean;
}

export interface Session {
  /** Runs one statement. Rejects with the driver's error (classified by the dialect). */
  execute(sql: string, params: StatementParams): Promise<ExecuteResult>;
  /**
   * Exactly-once: records `id` in the ledger table in the same transaction as the statement.
   * Resolves 'done-before' when the ledger holds the id already (nothing ran now). A
   * statement error rolls the transaction back and rejects with that error; a lost
   * connection rejects with the driver's error (the outcome is then unknown: ask isDone()
   * on a new session). `keyed`: the job was spooled with an idempotency key, and its key
   * row (keyLedgerId) is recorded in the same transaction.
   */
  executeOnce(id: string, sql: string, params: StatementParams, keyed?: boolean): Promise<OnceResult>;
  /**
   * Group commit: several jobs in ONE ledger transaction (their ids, then their statements
   * in order, then COMMIT). Resolves with each job's affected rows, or with null, sending
   * nothing, when the jobs can't go this way (then they run one by one). Any statement error
   * rolls the whole transaction back and rejects (nothing of the batch ran).
   */
  executeBatch(jobs: readonly BatchJob[], options?: BatchOptions): Promise<readonly number[] | null>;
  /**
   * A group commit that failed, again (issue 15): the jobs in ONE ledger transaction, each
   * under a savepoint (its ledger row, then its statement), in order. A refused statement is
   * rolled back to its savepoint and the rest go on; a ledger row already there means the
   * job ran before; then one COMMIT, with the ledger rows of the jobs that ran and of no
   * other (db/savepoints.ts). Resolves with each job's result; or with null, nothing left
   * behind, when the jobs can't go this way or an error was not a statement's own (a
   * transient one: the server may have rolled back the whole transaction): then they run one
   * by one. A lost connection rejects with the driver's error (nothing committed, unless it
   * was lost during the COMMIT: ask isDone()).
   */
  executeEach(jobs: readonly BatchJob[], options?: EachOptions): Promise<readonly EachResult[] | null>;
  /**
   * Runs a statement and hands its rows (as arrays of column values) to `onRow` one at a
   * time, waiting for each: never all in memory. `onColumns` gets the column names before
   * the first row.
   */
  stream(
    sql: string,
    params: StatementParams,
    onColumns: (columns: string[]) => void,
    onRow: (row: unknown[]) => Promise<void>,
  ): Promise<{ readonly rows: number; readonly affectedRows: number }>;
  /**
   * Runs one statement of a script on this session, in the script's session state. With a
   * key, the ledger records the statement: in its own transaction, or in the script's open
   * one (then it commits or rolls back with it). Rejects with the driver's error.
   */
  executeScriptStep(step: ScriptStep): Promise<ScriptStepResult>;
  /** The highest statement number of script `id` committed in the ledger (0: none). */
  scriptProgress(id: string): Promise<number>;
  /** Is `id` committed in the ledger? */
  isDone(id: string): Promise<boolean>;
  /** Deletes this spool's ledger rows with ids below `beforeId`; resolves with how many. */
  pruneLedger(beforeId: string): Promise<number>;
  /**
   * Records the key row (keyLedgerId) of keyed job `id` in a transaction of its own, if it
   * is not there yet: for a script, once it has run to its end, before its file goes.
   */
  rememberKey(id: string): Promise<void>;
  /** Whether the key row of job `id` is in the ledger, written less than `withinMs` ago (by the database's clock). */
  keyRemembered(id: string, withinMs: number): Promise<boolean>;
  /** Deletes this spool's key rows written `olderThanMs` ago or more; resolves with how many. */
  pruneKeyRows(olderThanMs: number): Promise<number>;
  /**
   * Takes the lock `key`, held by this session until unlock() or until the session dies:
   * one drainer per datasource across processes and hosts. Resolves false at once when
   * another session holds it.
   */
  tryLock(key: LockKey): Promise<boolean>;
  unlock(key: LockKey): Promise<void>;
  /**
   * Whether this session still holds the lock it took with tryLock(), every connection of it
   * alive: asked before a lock kept between runs is used again (continuous mode keeps it;
   * run/kept-holds.ts). A driver without it never has its lock kept between runs.
   */
  holdsLock?(): Promise<boolean>;
  /**
   * Stops the statement this session is running, on the server, from outside the session
   * (it is called while the statement is in flight). The statement then fails; the session
   * stays usable, or, when the stop could not be sent, is destroyed, so that the statement's
   * call fails as a lost connection.
   */
  cancel(): Promise<void>;
  /**
   * Returns the session to the datasource's clean state, after a job that may have changed
   * it (MySQL/MariaDB: COM_RESET_CONNECTION, then the datasource's init statements). The
   * lock taken by tryLock() is kept. Rejects like a statement when the connection is lost.
   */
  reset(): Promise<void>;
  /** Gives the session back for reuse. */
  release(): void;
  /** Drops the session (after a connection failure). */
  destroy(): void;
}

/**
 * Whether a job of a datasource with the ledger runs exactly once through it: its statement
 * can share the ledger's transaction, and its result is not captured (a captured SELECT runs
 * outside the ledger). Whether the datasource has the ledger is the caller's to check. The
 * runner runs such jobs in ledger transactions; only such jobs share a segment file.
 * `traits`: the statement's, when the caller has read them already. Pure.
 */
export function runsOnceWithLedger(dialect: Dialect, job: { readonly sql: string; readonly captureResult?: true }, traits: StatementTraits = dialect.inspect(job.sql)): boolean {
  return job.captureResult === undefined && traits.transactional;
}
