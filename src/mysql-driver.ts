import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, PoolOptions, ResultSetHeader } from 'mysql2/promise';
import type { Driver, ExecuteResult, Session } from './driver.js';
import type { ParamValue } from './spool-file.js';

/** Error numbers for "this statement can't be prepared": fall back to a plain query. */
const NOT_PREPARABLE = new Set([1295 /* ER_UNSUPPORTED_PS */]);

/**
 * Our defaults for a spool runner's pool, under the user's URL and options:
 * - timezone 'Z': a Date is bound as UTC, whatever the time zone of the machine that runs it
 *   (producer and runner may be different machines);
 * - supportBigNumbers/bigNumberStrings: BIGINT and DECIMAL results are never rounded.
 */
const BASE_OPTIONS: PoolOptions = {
  timezone: 'Z',
  supportBigNumbers: true,
  bigNumberStrings: true,
  connectTimeout: 10_000,
  connectionLimit: 2,
  maxIdle: 1,
  idleTimeout: 60_000,
  enableKeepAlive: true,
};

function isNamed(params: readonly ParamValue[] | Record<string, ParamValue>): params is Record<string, ParamValue> {
  return !Array.isArray(params);
}

class MysqlSession implements Session {
  readonly #connection: PoolConnection;

  constructor(connection: PoolConnection) {
    this.#connection = connection;
  }

  async execute(sql: string, params: readonly ParamValue[] | Record<string, ParamValue>): Promise<ExecuteResult> {
    const query = { sql, namedPlaceholders: isNamed(params) };
    const values = params as unknown as never;
    let result: unknown;
    try {
      [result] = await this.#connection.execute(query, values);
    } catch (error) {
      if (!NOT_PREPARABLE.has((error as { errno?: number }).errno ?? 0)) throw error;
      [result] = await this.#connection.query(query, values);
    }
    const header = result as Partial<ResultSetHeader>;
    return { affectedRows: typeof header?.affectedRows === 'number' ? header.affectedRows : 0 };
  }

  release(): void {
    this.#connection.release();
  }

  destroy(): void {
    this.#connection.destroy();
  }
}

export class MysqlDriver implements Driver {
  readonly #pool: Pool;

  constructor(url: string, options: Omit<PoolOptions, 'uri'> = {}) {
    this.#pool = mysql.createPool({ ...BASE_OPTIONS, ...options, uri: url });
    // An idle pooled connection that dies emits 'error' on the pool's connection; the next
    // run sees a fresh one. Without a listener Node would crash the process.
    this.#pool.on('connection', (connection) => {
      connection.on('error', () => {});
    });
  }

  async connect(): Promise<Session> {
    const connection = await this.#pool.getConnection();
    return new MysqlSession(connection);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
