/**
 * A database the drain scenarios run against: how to make the table, count its rows, and run
 * the raw client loop that querybatch's drain is compared with. One file per dialect beside
 * this one; only that file imports its client.
 */
export interface DrainTarget {
  /** Shown in logs and notes: `MariaDB`, `PostgreSQL`, `SQLite`. */
  readonly name: string;
  /** The datasource URL querybatch drains into. */
  readonly url: string;
  /** The comparison column's label for the loop with one statement per transaction. */
  readonly perStatementLabel: string;
  /** The comparison column's label for the loop with every statement in one transaction. */
  readonly oneTransactionLabel: string;
  /** Why querybatch's side can't run here (no driver registered for the URL), or null. */
  readonly unavailable: string | null;
  /** Creates the database if needed. */
  prepare(): Promise<void>;
  /** Drops and creates the scenario's table: an auto-increment key, an INT and a VARCHAR(64). */
  resetTable(table: string): Promise<void>;
  dropTable(table: string): Promise<void>;
  rowCount(table: string): Promise<number>;
  /** The statement querybatch spools for each job, with `?` placeholders. */
  insertSql(table: string): string;
  /**
   * The raw client loop: `n` INSERTs of `paramsFor(0..n-1)` on one connection, the statement
   * prepared once before the clock starts; autocommit, or all in one transaction. Returns
   * the milliseconds the loop took. The table is empty when it starts.
   */
  rawLoop(table: string, n: number, oneTransaction: boolean): Promise<number>;
  /** The bulk loader's label: the database's own command-line client (coalesce scenario). */
  readonly bulkLabel: string;
  /**
   * The bulk loader (coalesce scenario): the database's command-line client reads a file
   * (written in `dir` before the clock starts) of rows paramsFor(0..n-1) as multi-row
   * INSERTs of 1,000 rows in one transaction (common.ts bulkInserts()). Returns the
   * milliseconds it took, the client's start included. The table is empty.
   */
  bulkLoad(table: string, n: number, dir: string): Promise<number>;
  /** Server or library facts for the machine line: version, durability settings. */
  describe(): Promise<Record<string, unknown>>;
}
