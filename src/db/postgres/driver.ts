import pg from 'pg';
import type { PoolClient, PoolConfig } from 'pg';
import type { Driver, DriverCapabilities, DriverSettings, LedgerSettings, Session } from '../driver.js';
import { postgresCapabilities, postgresDialect } from './dialect.js';
import { createLedgerTable, quoteIdent } from './ledger-sql.js';
import { poolOptions, singleConnectionOptions } from './options.js';
import { PostgresSession } from './session.js';

/** 42P07 duplicate_table, 23505 unique_violation: two runners created the ledger table at once. */
const CREATED_MEANWHILE = new Set(['42P07', '23505']);

/**
 * PostgreSQL through a pg pool: a session is one pooled connection; with a ledger, the
 * ledger table is created on the first connect, in the schema the first connection sees
 * first (current_schema(), after the init statements) unless the table names its schema.
 */
export class PostgresDriver implements Driver {
  readonly dialect = postgresDialect;
  readonly capabilities: DriverCapabilities = postgresCapabilities;
  readonly #pool: pg.Pool;
  readonly #ledger: LedgerSettings | null;
  readonly #single: PoolConfig;
  readonly #init: readonly string[];
  /** The ledger table, quoted and schema-qualified, once made. */
  #ledgerReady: Promise<string> | null = null;
  /** Pooled connections set up (init run, error listener on). */
  readonly #setUp = new WeakSet<object>();

  constructor(settings: DriverSettings) {
    this.#ledger = settings.ledger;
    this.#init = settings.init;
    this.#single = singleConnectionOptions(settings.url, settings.options);
    this.#pool = new pg.Pool(poolOptions(settings.url, settings.options));
    // An idle pooled connection that dies emits 'error' on the pool: the next run gets a new one.
    this.#pool.on('error', () => {});
  }

  async connect(): Promise<Session> {
    const client = await this.#pool.connect();
    const fresh = !this.#setUp.has(client);
    // A checked-out connection that dies between queries emits 'error' on itself.
    if (fresh) client.on('error', () => {});
    try {
      const table = this.#ledger === null ? '' : await this.#ledgerTable(client, this.#ledger.table);
      const session = new PostgresSession(client, this.#ledger, table, this.#single, this.#init);
      if (fresh) await session.setUp();
      this.#setUp.add(client);
      return session;
    } catch (error) {
      client.release(true);
      throw error;
    }
  }

  #ledgerTable(client: PoolClient, table: string): Promise<string> {
    this.#ledgerReady ??= this.#makeLedger(client, table).catch((error: unknown) => {
      this.#ledgerReady = null;
      throw error;
    });
    return this.#ledgerReady;
  }

  async #makeLedger(client: PoolClient, table: string): Promise<string> {
    const dot = table.indexOf('.');
    let schema: string;
    if (dot >= 0) {
      schema = table.slice(0, dot);
    } else {
      if (!this.#setUp.has(client)) for (const statement of this.#init) await client.query(statement);
      const found = (await client.query<{ schema: string | null }>('SELECT current_schema() AS schema')).rows[0]?.schema;
      if (!found) throw Object.assign(new Error(`Expected a schema to create the ledger table ${table} in; the search_path names none that exists (name it: "ledger": { "table": "schema.${table}" })`), { code: '3F000' });
      schema = found;
    }
    const qualified = `${quoteIdent(schema)}.${quoteIdent(dot >= 0 ? table.slice(dot + 1) : table)}`;
    try {
      await client.query(createLedgerTable(qualified));
    } catch (error) {
      if (!CREATED_MEANWHILE.has(String((error as { code?: unknown }).code))) throw error;
    }
    return qualified;
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
