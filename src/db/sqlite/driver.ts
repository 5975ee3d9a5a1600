import type { Driver, DriverCapabilities, DriverSettings, Session } from '../driver.js';
import { sqliteDialect } from './dialect.js';
import { quoteTable } from './ledger-sql.js';
import { databasePath, sqliteOptions } from './options.js';
import { SqliteSession, type OpenSettings } from './session.js';

/**
 * SQLite through better-sqlite3: a session is one connection in a process of its own
 * (session.ts); with a ledger, each session's open creates the ledger table if missing.
 */
export class SqliteDriver implements Driver {
  readonly dialect = sqliteDialect;
  readonly capabilities: DriverCapabilities = { groupCommit: true, streaming: true };
  readonly #open: OpenSettings;
  readonly #ledger: DriverSettings['ledger'];
  readonly #sessions = new Set<SqliteSession>();

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

  async connect(): Promise<Session> {
    const session = await SqliteSession.open(this.#open, this.#ledger);
    this.#sessions.add(session);
    const release = session.release.bind(session);
    const destroy = session.destroy.bind(session);
    session.release = () => (this.#sessions.delete(session), release());
    session.destroy = () => (this.#sessions.delete(session), destroy());
    return session;
  }

  close(): Promise<void> {
    for (const session of this.#sessions) session.destroy();
    this.#sessions.clear();
    return Promise.resolve();
  }
}
