import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, PoolOptions, ResultSetHeader } from 'mysql2/promise';
import type { Driver, ExecuteResult, Session } from './driver.js';
import type { ParamValue } from './spool-file.js';

/**
 * Error numbers for "this statement can't be prepared (now)": fall back to a plain query.
 * 1461: the server's max_prepared_stmt_count is reached (other clients may hold them).
 */
const NOT_PREPARABLE = new Set([1295 /* ER_UNSUPPORTED_PS */, 1461 /* ER_MAX_PREPARED_STMT_COUNT_REACHED */]);

/**
 * Our defaults for a spool runner's pool, under the user's URL query parameters and options:
 * - timezone 'Z': a Date is bound as UTC, whatever the time zone of the machine that runs it
 *   (producer and runner may be different machines);
 * - supportBigNumbers/bigNumberStrings: BIGINT and DECIMAL results are never rounded;
 * - maxPreparedStatements 64: every distinct SQL text is prepared once per connection and the
 *   pool keeps its connection between runs; mysql2's default cache (16,000) would let a spool
 *   of literal-valued statements use up the server-wide max_prepared_stmt_count (16,382).
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
  maxPreparedStatements: 64,
};

/** BASE_OPTIONS less the ones the URL's query string sets (mysql2 lets explicit options win over the URL). */
function defaultsUnder(url: string): PoolOptions {
  const out: Record<string, unknown> = { ...BASE_OPTIONS };
  try {
    for (const key of new URL(url).searchParams.keys()) delete out[key];
  } catch {
    // config.ts has checked the URL already
  }
  return out as PoolOptions;
}

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

  async tryLock(name: string): Promise<boolean> {
    const [rows] = await this.#connection.query('SELECT GET_LOCK(?, 0) AS granted', [name]);
    return Number((rows as Array<{ granted: unknown }>)[0]?.granted) === 1;
  }

  async unlock(name: string): Promise<void> {
    await this.#connection.query('SELECT RELEASE_LOCK(?)', [name]);
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
    this.#pool = mysql.createPool({ ...defaultsUnder(url), ...options, uri: url });
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
