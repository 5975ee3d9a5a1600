import type { ParamValue } from './spool-file.js';

/**
 * What the runner needs of a database. The runner knows nothing else of the engine, so the
 * same runner can drive MariaDB/MySQL (mysql-driver.ts) and, later, other engines.
 */
export interface Driver {
  /** Takes one session for a run. Rejects when the database cannot be reached. */
  connect(): Promise<Session>;
  /** Closes every connection the driver holds. */
  close(): Promise<void>;
}

export interface ExecuteResult {
  readonly affectedRows: number;
}

export interface Session {
  /** Runs one statement. Rejects with the driver's error (classified by classify.ts). */
  execute(sql: string, params: readonly ParamValue[] | Record<string, ParamValue>): Promise<ExecuteResult>;
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
