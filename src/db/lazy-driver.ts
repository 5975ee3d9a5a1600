import type { Dialect, Driver, DriverCapabilities, Session } from './driver.js';

/**
 * A driver whose module (and the database client it imports: mysql2, pg, better-sqlite3) is
 * loaded when it is first connected, not when querybatch is imported: a command that opens
 * no database (`querybatch status`, `spool`) never pays for a client. What is known without a
 * connection (the dialect, the capabilities) is there at once; connect() is the async
 * boundary where `load` runs (once; again after it failed). A load that fails (a client that
 * is not installed, a native module that does not build) rejects connect() with its error.
 */
export class LazyDriver implements Driver {
  readonly dialect: Dialect;
  readonly capabilities: DriverCapabilities;
  readonly #load: () => Promise<Driver>;
  #driver: Promise<Driver> | null = null;

  constructor(dialect: Dialect, capabilities: DriverCapabilities, load: () => Promise<Driver>) {
    this.dialect = dialect;
    this.capabilities = capabilities;
    this.#load = load;
  }

  /** The driver the module made: loaded on the first call. */
  loaded(): Promise<Driver> {
    this.#driver ??= this.#load().catch((error: unknown) => {
      this.#driver = null;
      throw error;
    });
    return this.#driver;
  }

  async connect(): Promise<Session> {
    return (await this.loaded()).connect();
  }

  /** Closes the driver it made, if any (one still loading is waited for); nothing to close before the first connect(). */
  async close(): Promise<void> {
    const driver = this.#driver;
    if (driver === null) return;
    await (await driver).close();
  }
}
