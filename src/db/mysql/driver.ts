import mysql from 'mysql2/promise';
import { escapeId } from 'mysql2';
import type { ConnectionOptions, Pool, PoolConnection } from 'mysql2/promise';
import type { Driver, DriverCapabilities, DriverSettings, LedgerSettings, Session } from '../driver.js';
import { mysqlCapabilities, mysqlDialect } from './dialect.js';
import { SELECT_ID_WIDTH, createLedgerTable, widenLedgerId } from './ledger-sql.js';
import { poolOptions, singleConnectionOptions } from './options.js';
import { MysqlSession } from './session.js';

/**
 * MySQL/MariaDB through a mysql2 pool: a session is one pooled connection; with a ledger the
 * ledger table is created on the first connect.
 */
export class MysqlDriver implements Driver {
  readonly dialect = mysqlDialect;
  readonly capabilities: DriverCapabilities = mysqlCapabilities;
  readonly #pool: Pool;
  readonly #ledger: LedgerSettings | null;
  /** How a session's cancel() opens a connection of its own: the pool's settings. */
  readonly #cancelOptions: ConnectionOptions;
  #ledgerReady: Promise<unknown> | null = null;
  readonly #init: readonly string[];
  /** Pooled connections the init statements have run on (the pool keeps a connection between runs). */
  readonly #setUp = new WeakSet<object>();

  /** `settings.options` are mysql2 pool options (checked by the factory); they win over the URL's. */
  constructor(settings: DriverSettings) {
    this.#ledger = settings.ledger;
    this.#init = settings.init;
    this.#cancelOptions = singleConnectionOptions(settings.url, settings.options);
    this.#pool = mysql.createPool(poolOptions(settings.url, settings.options, settings.ledger !== null));
    // An idle pooled connection that dies emits 'error' on the pool's connection; the next
    // run sees a fresh one. Without a listener Node would crash the process.
    this.#pool.on('connection', (connection) => {
      connection.on('error', () => {});
    });
  }

  async connect(): Promise<Session> {
    const connection = await this.#pool.getConnection();
    const session = new MysqlSession(connection, this.#ledger, this.#cancelOptions, this.#init);
    const core = (connection as unknown as { connection: object }).connection;
    try {
      await session.setUp(!this.#setUp.has(core));
      this.#setUp.add(core);
      if (this.#ledger) {
        this.#ledgerReady ??= this.#makeLedger(connection, this.#ledger.table).catch((error: unknown) => {
          this.#ledgerReady = null;
          throw error;
        });
        await this.#ledgerReady;
      }
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return session;
  }

  /** Creates the ledger table if missing; widens the id column of one made before scripts (their statements' keys are longer than a job's id). */
  async #makeLedger(connection: PoolConnection, table: string): Promise<void> {
    const quoted = escapeId(table);
    await connection.query(createLedgerTable(quoted));
    const dot = table.indexOf('.');
    const [rows] = await connection.query(SELECT_ID_WIDTH, dot < 0 ? [null, table] : [table.slice(0, dot), table.slice(dot + 1)]);
    const width = Number((rows as Array<{ width: unknown }>)[0]?.width);
    if (width > 0 && width < 40) await connection.query(widenLedgerId(quoted));
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
