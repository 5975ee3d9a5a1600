import type { ParamValue } from '../spool/record.js';

/**
 * What the runner needs of a database. The runner knows nothing else of the engine, so the
 * same runner can drive MariaDB/MySQL (db/mysql/driver.ts) and, later, other engines.
 */
export interface Driver {
  /**
   * Takes one session for a run. Rejects when the database cannot be reached. With a
   * ledger, the ledger table is created if missing (once per driver).
   */
  connect(): Promise<Session>;
  /**
   * Stops the statement a session is running, on the server (MySQL/MariaDB `KILL QUERY`
   * from a connection of its own): the statement fails, the session stays usable.
   */
  cancel(session: Session): Promise<void>;
  /** Closes every connection the driver holds. */
  close(): Promise<void>;
}

export interface ExecuteResult {
  readonly affectedRows: number;
}

/** What executeOnce() found: it ran the statement now, or the ledger says it ran before. */
export type OnceResult = { readonly status: 'done'; readonly affectedRows: number } | { readonly status: 'done-before' };

export interface Session {
  /** The server's id for this session's connection (what cancel() stops). */
  readonly threadId: number;
  /** Runs one statement. Rejects with the driver's error (classified by db/mysql/classify.ts). */
  execute(sql: string, params: readonly ParamValue[] | Record<string, ParamValue>): Promise<ExecuteResult>;
  /**
   * Exactly-once: records `id` in the ledger table in the same transaction as the statement
   * (one round trip where the statement allows it). Resolves 'done-before' when the ledger
   * holds the id already (nothing ran now). A statement error rolls the transaction back
   * and rejects with that error; a lost connection rejects with the driver's error (the
   * outcome is then unknown: ask isDone() on a new session).
   */
  executeOnce(id: string, sql: string, params: readonly ParamValue[] | Record<string, ParamValue>): Promise<OnceResult>;
  /**
   * Group commit: several jobs in ONE ledger transaction and one round trip (their ids, then
   * their statements in order, then COMMIT). Resolves with each job's affected rows, or with
   * null, sending nothing, when a job can't
   * go this way (named params, a statement that is not a single transactional one, a
   * placeholder count that does not match): run them one by one then. Any statement error
   * rolls the whole transaction back and rejects (nothing of the batch ran).
   */
  executeBatch(jobs: ReadonlyArray<{ readonly id: string; readonly sql: string; readonly params: readonly ParamValue[] | Record<string, ParamValue> }>): Promise<readonly number[] | null>;
  /**
   * Runs a statement and hands its rows (as arrays of column values) to `onRow` one at a
   * time, waiting for each: the rows are streamed from the server, never all in memory.
   * `onColumns` gets the column names before the first row.
   */
  stream(
    sql: string,
    params: readonly ParamValue[] | Record<string, ParamValue>,
    onColumns: (columns: string[]) => void,
    onRow: (row: unknown[]) => Promise<void>,
  ): Promise<{ readonly rows: number; readonly affectedRows: number }>;
  /** Is `id` committed in the ledger? */
  isDone(id: string): Promise<boolean>;
  /** Deletes this spool's ledger rows with ids below `beforeId`; resolves with how many. */
  pruneLedger(beforeId: string): Promise<number>;
  /**
   * Takes a named lock held by this session until unlock() or until the session dies
   * (MySQL/MariaDB GET_LOCK): one drainer per datasource across processes and hosts.
   * Resolves false at once when another session holds it.
   */
  tryLock(name: string): Promise<boolean>;
  unlock(name: string): Promise<void>;
  /** Gives the session back for reuse. */
  release(): void;
  /** Drops the session (after a connection failure). */
  destroy(): void;
}
