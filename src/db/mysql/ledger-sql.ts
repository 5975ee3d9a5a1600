/**
 * The ledger's SQL for MySQL/MariaDB, as pure functions: the table, the rows a transaction
 * records, the one-trip transaction that holds them with the jobs' statements, the lookup
 * and the prune. `table` is always the quoted name (mysql2's escapeId); values are written
 * with the session's escaping (`escape`) or bound as `?`.
 */

/**
 * The ledger's id column: a job's id (26 characters), or a script statement's key (the
 * script's id, `:` and the statement's number: scriptStatementKey).
 */
const ID_COLUMN = 'id VARCHAR(40) CHARACTER SET ascii COLLATE ascii_bin NOT NULL';

/** The ledger table: one row per committed job id (or script statement), tagged with the spool that ran it. */
export function createLedgerTable(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  ${ID_COLUMN} PRIMARY KEY,
  spool CHAR(24) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  done_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`;
}

/** The width of the id column of a ledger table, to find one made before scripts (CHAR(26)). Binds the schema (null: the current database) and the table's name. */
export const SELECT_ID_WIDTH = "SELECT CHARACTER_MAXIMUM_LENGTH AS width FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = 'id'";

/** Widens the id column of a ledger made before scripts (rows kept). */
export function widenLedgerId(table: string): string {
  return `ALTER TABLE ${table} MODIFY ${ID_COLUMN}`;
}

/** Binds the LIKE pattern of a script's keys: its highest recorded statement. */
export function selectScriptProgress(table: string): string {
  return `SELECT id FROM ${table} WHERE id LIKE ? ORDER BY id DESC LIMIT 1`;
}

/** The statement number in a key scriptStatementKey() made. */
export function statementOfKey(key: string): number {
  return Number(key.slice(key.lastIndexOf(':') + 1));
}

/** The INSERT of these jobs' ledger rows (a second insert of an id fails with ER_DUP_ENTRY, 1062). */
export function insertLedgerRows(table: string, spool: string, ids: readonly string[], escape: (value: unknown) => string): string {
  return `INSERT INTO ${table} (id, spool) VALUES ${ids.map((id) => `(${escape(id)}, ${escape(spool)})`).join(', ')}`;
}

/**
 * One round trip: the ledger rows and the jobs' statements commit together or not at all.
 * The query's results come one per statement: START TRANSACTION, the ledger rows, then the
 * jobs' from FIRST_JOB_RESULT on, then COMMIT.
 */
export function ledgerTransaction(ledgerRows: string, statements: readonly string[]): string {
  return `${openLedgerTransaction(ledgerRows, statements)}; COMMIT`;
}

/** A ledgerTransaction() without its COMMIT: the caller reads the results, then commits or rolls back (coalescing checks its figures first). */
export function openLedgerTransaction(ledgerRows: string, statements: readonly string[]): string {
  return `START TRANSACTION; ${ledgerRows}; ${statements.join('; ')}`;
}

const TRAILER = '; COMMIT';

/**
 * A server message about a job's statement sent in a ledgerTransaction(), as if the
 * statement had been sent alone: the text the server quotes (`near '…' at line 1`) stops at
 * the statement's end, without the `; COMMIT` (or the `trailer`) that follows it there. Pure.
 */
export function messageForStatement(message: string, statement: string, trailer = TRAILER): string {
  const m = /near '([\s\S]*)' at line (\d+)$/.exec(message);
  if (!m) return message;
  // The server cuts a long quote short with `...`: the text it quotes is then a prefix of what was sent.
  const snippet = m[1]!.endsWith('...') ? m[1]!.slice(0, -3) : m[1]!;
  const sent = statement + trailer;
  // Where the quoted text starts in what followed the statement's start (the last place it fits).
  for (let at = Math.min(statement.length, sent.length - snippet.length); at >= 0; at--) {
    if (!sent.startsWith(snippet, at)) continue;
    const kept = snippet.slice(0, Math.max(0, statement.length - at));
    return kept === snippet ? message : `${message.slice(0, m.index)}near '${kept}' at line ${m[2]}`;
  }
  return message;
}

/** Where the jobs' results start among a ledgerTransaction()'s. */
export const FIRST_JOB_RESULT = 2;

/** Binds the id. */
export function selectLedgerRow(table: string): string {
  return `SELECT 1 AS done FROM ${table} WHERE id = ?`;
}

/** Rows deleted per prune statement: short statements, short locks. */
export const PRUNE_CHUNK = 10_000;

/** Binds the spool and the id before which its rows go; deletes at most PRUNE_CHUNK of them. */
export function pruneLedgerRows(table: string): string {
  return `DELETE FROM ${table} WHERE spool = ? AND id < ? LIMIT ${PRUNE_CHUNK}`;
}

/** Binds the key row's id and how long ago at most (µs) it was written: a row when it holds. */
export function selectKeyRow(table: string): string {
  return `SELECT 1 AS held FROM ${table} WHERE id = ? AND TIMESTAMPDIFF(MICROSECOND, done_at, CURRENT_TIMESTAMP(6)) < ?`;
}

/** A key row written only when missing (a script's, after its end: it may have been recorded by a run cut short after it). */
export function insertKeyRowIfMissing(insert: string): string {
  return `${insert} ON DUPLICATE KEY UPDATE id = id`;
}

/**
 * Binds the spool and an age (µs): deletes at most PRUNE_CHUNK of its key rows (ids `k:…`,
 * a range of the primary key) written that long ago or more.
 */
export function pruneKeyRows(table: string): string {
  return `DELETE FROM ${table} WHERE id >= 'k:' AND id < 'k;' AND spool = ? AND TIMESTAMPDIFF(MICROSECOND, done_at, CURRENT_TIMESTAMP(6)) >= ? LIMIT ${PRUNE_CHUNK}`;
}
