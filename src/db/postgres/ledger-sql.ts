/**
 * The ledger's SQL for PostgreSQL, as pure functions. `table` is always the quoted,
 * schema-qualified name (a job's SET search_path must not move the ledger). The id column
 * sorts bytewise (COLLATE "C"): the prune's `id < $2` and a script's `LIKE 'id:%'` follow
 * the ids' own order, whatever the database's collation.
 */

export function createLedgerTable(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  id VARCHAR(40) COLLATE "C" PRIMARY KEY,
  spool VARCHAR(64) COLLATE "C" NOT NULL,
  done_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;
}

/** An identifier quoted for PostgreSQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The INSERT of ledger rows, with the ids and spool written as literals (a second insert of an id fails with 23505). */
export function insertLedgerRows(table: string, spool: string, ids: readonly string[], literal: (text: string) => string): string {
  return `INSERT INTO ${table} (id, spool) VALUES ${ids.map((id) => `(${literal(id)}, ${literal(spool)})`).join(', ')}`;
}

/**
 * One simple query, one round trip: the ledger rows and the jobs' statements commit together
 * or not at all (a failed statement skips the rest and leaves the transaction aborted:
 * the session rolls it back). Results: BEGIN, the ledger rows, then the jobs' from
 * FIRST_JOB_RESULT on, then COMMIT.
 */
export function ledgerTransaction(ledgerRows: string, statements: readonly string[]): string {
  return `${openLedgerTransaction(ledgerRows, statements)};\nCOMMIT`;
}

/** A ledgerTransaction() without its COMMIT: the caller reads the results, then commits or rolls back (coalescing checks its figures first). */
export function openLedgerTransaction(ledgerRows: string, statements: readonly string[]): string {
  return `BEGIN; ${ledgerRows}; ${statements.join(';\n')}`;
}

export const FIRST_JOB_RESULT = 2;

export function selectLedgerRow(table: string): string {
  return `SELECT 1 FROM ${table} WHERE id = $1`;
}

/** Binds the LIKE pattern of a script's keys. */
export function selectScriptProgress(table: string): string {
  return `SELECT id FROM ${table} WHERE id LIKE $1 ORDER BY id DESC LIMIT 1`;
}

export function statementOfKey(key: string): number {
  return Number(key.slice(key.lastIndexOf(':') + 1));
}

export const PRUNE_CHUNK = 10_000;

/** Binds the spool and the id before which its rows go; at most PRUNE_CHUNK of them (PostgreSQL's DELETE has no LIMIT). */
export function pruneLedgerRows(table: string): string {
  return `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE spool = $1 AND id < $2 LIMIT ${PRUNE_CHUNK})`;
}

/** Binds the key row's id and how long ago at most (ms) it was written: a row when it holds. */
export function selectKeyRow(table: string): string {
  return `SELECT 1 FROM ${table} WHERE id = $1 AND extract(epoch FROM now() - done_at) * 1000 < $2`;
}

/**
 * Binds the spool and an age (ms): deletes at most PRUNE_CHUNK of its key rows (ids `k:…`,
 * a range of the primary key) written that long ago or more.
 */
export function pruneKeyRows(table: string): string {
  return `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE id >= 'k:' AND id < 'k;' AND spool = $1 AND extract(epoch FROM now() - done_at) * 1000 >= $2 LIMIT ${PRUNE_CHUNK})`;
}
