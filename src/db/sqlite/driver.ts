import type { Driver, DriverCapabilities, DriverSettings, Session } from '../driver.js';
import { sqliteCapabilities, sqliteDialect } from './dialect.js';
import { quoteTable } from './ledger-sql.js';
import { databasePath, sqliteOptions } from './options.js';
import type { SqliteProcess } from './process.js';
import { SqliteSession, type OpenSettings, type SessionOwner } from './session.js';

/**
 * SQLite through better-sqlite3: a session is one connection in a process of its own
 * (session.ts); with a ledger, each session's open creates the ledger table if missing.
 */
export class SqliteDriver implements Driver {
  readonly dialect = sqliteDialect;
  readonly capabilities: DriverCapabilities = sqliteCapabilities;
  readonly #open: OpenSettings;
  readonly #ledger: DriverSettings['ledger'];
  readonly #sessions = new Set<SqliteSession>();
  /** A released session's process, kept for the next connect(). */
  #idle: SqliteProcess | null = null;
  readonly #owner: SessionOwner = {
    keep: (process) => {
      if (this.#idle !== null || this.#closed) return false;
      this.#idle = process;
      return true;
    },
    ended: (session) => this.#sessions.delete(session),
  };
  #closed = false;

  constructor(settings: DriverSettings) {
    this.#ledger = settings.ledger;
    this.#open = {
      path: databasePath(settings.url, settings.home),
      busyTimeoutMs: sqliteOptions(settings.options).busyTimeoutMs,
      init: settings.init,
      ledgerTable: settings.ledger === null ? null : quoteTable(settings.ledger.table),
    };
  }

  /** The database file (absolute). */
  get path(): string {
    return this.#open.path;
  }

  /**
   * A session on the process a released session left (an idle connection, like a pool's), or
   * on a new one. The process is not kept busy while idle: it does not keep Node running.
   */
  async connect(): Promise<Session> {
    const idle = this.#idle;
    this.#idle = null;
    const process = idle?.alive === true ? idle : await SqliteSession.start(this.#open);
    if (idle !== null && idle !== process) void idle.close();
    const session = new SqliteSession(process, this.#open, this.#ledger, this.#owner);
    this.#sessions.add(session);
    return session;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const session of [...this.#sessions]) session.destroy();
    this.#sessions.clear();
    const idle = this.#idle;
    this.#idle = null;
    await idle?.close();
  }
}
