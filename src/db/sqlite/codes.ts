/** Error codes this driver makes itself, beside SQLite's own (SQLITE_BUSY, …). Pure. */

/** The session's process was killed to stop its statement (a time limit passed): the statement's failure. */
export const INTERRUPTED = 'SQLITE_INTERRUPT';
/** The session's process died by itself, or could not be started or reached: a connection failure. */
export const PROCESS_LOST = 'SQLITE_PROCESS_LOST';

/** An error the session's process sent back (better-sqlite3's SqliteError, with its code: SQLITE_CONSTRAINT_UNIQUE, …), or one of the above. */
export class SqliteError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SqliteError';
    this.code = code;
  }
}
