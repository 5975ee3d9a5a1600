import type { ErrorClass } from '../driver.js';
import { errorInfo } from '../error-info.js';
import { INTERRUPTED, PROCESS_LOST } from './codes.js';

/**
 * Is a SQLite error about the database file or the session's process (retry later), a
 * transient one (another connection holds a lock: run it again now), or the statement's own
 * (a constraint, a syntax error: failed/)? better-sqlite3 gives SQLite's extended result
 * codes as names (SQLITE_BUSY_SNAPSHOT, SQLITE_IOERR_WRITE, …). Pure.
 */

/** Primary result codes that say "not now" or "not this file", never "not this statement". */
const CONNECTION_PRIMARY: ReadonlySet<string> = new Set([
  'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_FULL', 'SQLITE_NOTADB', 'SQLITE_CORRUPT', 'SQLITE_NOMEM', 'SQLITE_PERM', 'SQLITE_READONLY', 'SQLITE_PROTOCOL', 'SQLITE_NOLFS', 'SQLITE_AUTH',
]);

/** SQLITE_BUSY and SQLITE_LOCKED: the statement (and the transaction it was in) was rolled back by the session; running it again is safe. */
const TRANSIENT_PRIMARY: ReadonlySet<string> = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED']);

/** SQLITE_IOERR_WRITE → SQLITE_IOERR. */
/** Primary codes of errors that are not a statement's own (transient, or the connection's): a group under savepoints stops at them (child-source.ts each). */
export const NOT_STATEMENT_PRIMARY: readonly string[] = [...TRANSIENT_PRIMARY, ...CONNECTION_PRIMARY];

function primary(code: string): string {
  const m = /^SQLITE_[A-Z]+/.exec(code);
  return m ? m[0] : code;
}

export function classifyError(error: unknown, phase: 'connect' | 'execute'): ErrorClass {
  if (phase === 'connect') return 'connection';
  const { code } = errorInfo(error);
  if (code === PROCESS_LOST) return 'connection';
  // Our own kill of a statement over its time limit: the statement's.
  if (code === INTERRUPTED) return 'sql';
  const main = primary(code);
  if (TRANSIENT_PRIMARY.has(main)) return 'transient';
  if (CONNECTION_PRIMARY.has(main)) return 'connection';
  return 'sql';
}
