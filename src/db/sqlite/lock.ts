import Database from 'better-sqlite3';

/**
 * The drain's lock: an exclusive transaction on a small lock database beside the
 * datasource's file (`<db>.<key>`), held on a connection of the owner's process for as long
 * as the drain runs. SQLite locks the file with the operating system's file locks, which die
 * with their process (a SIGKILLed runner's lock is free at once), and which SQLite also keeps
 * between connections of one process. Taking it never waits: busy means another runner holds it.
 * Opened here rather than in the session's process, so that stopping a statement (which kills
 * that process) keeps the lock.
 */
export class FileLock {
  #db: Database.Database | null = null;

  /** Takes the lock; false when another connection holds it. Throws when the file can't be opened. */
  take(path: string): boolean {
    this.release();
    const db = new Database(path, { timeout: 0 });
    try {
      db.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      db.close();
      if (/^SQLITE_(BUSY|LOCKED)/.test(String((error as { code?: unknown }).code))) return false;
      throw error;
    }
    this.#db = db;
    return true;
  }

  /** Whether the lock is taken (by this process: the operating system's lock lives as long as the open file). */
  get held(): boolean {
    return this.#db !== null;
  }

  release(): void {
    const db = this.#db;
    this.#db = null;
    if (db === null) return;
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
  }
}
