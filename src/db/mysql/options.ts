import type { ConnectionOptions, PoolOptions } from 'mysql2';
import { QueryBatchError, describeValue } from '../../errors.js';
import { redactUrl } from '../url.js';

/**
 * A MySQL/MariaDB datasource's settings: the checks of its URL and options (config time),
 * and the mysql2 options its pool and its cancel connections are made with. Pure.
 */

/**
 * Our defaults for a spool runner's pool, under the user's URL query parameters and options:
 * - timezone 'Z': a Date is bound as UTC, whatever the time zone of the machine that runs it
 *   (producer and runner may be different machines);
 * - supportBigNumbers/bigNumberStrings: BIGINT and DECIMAL results are never rounded;
 * - maxPreparedStatements 64: every distinct SQL text is prepared once per connection and the
 *   pool keeps its connection between runs; mysql2's default cache (16,000) would let a spool
 *   of literal-valued statements use up the server-wide max_prepared_stmt_count (16,382).
 */
export const BASE_OPTIONS: PoolOptions = {
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
export function defaultsUnder(url: string): PoolOptions {
  const out: Record<string, unknown> = { ...BASE_OPTIONS };
  try {
    for (const key of new URL(url).searchParams.keys()) delete out[key];
  } catch {
    // the factory has checked the URL already
  }
  return out;
}

/**
 * The pool's options: our defaults, the URL's, then the datasource's. With a ledger the pool
 * allows several statements per query (the ledger row and the job's statement go in one
 * round trip); a job's own text is never sent that way (db/mysql/session.ts).
 */
export function poolOptions(url: string, options: Readonly<Record<string, unknown>>, ledger: boolean): PoolOptions {
  return { ...defaultsUnder(url), ...options, uri: url, ...(ledger && { multipleStatements: true }) };
}

/** The options of a connection of its own, outside the pool (a cancel's): the pool's less what only a pool takes. */
export function singleConnectionOptions(url: string, options: Readonly<Record<string, unknown>>): ConnectionOptions {
  const { connectionLimit: _l, maxIdle: _m, idleTimeout: _i, enableKeepAlive: _k, ...single } = { ...defaultsUnder(url), ...options, uri: url } as PoolOptions;
  return { ...single, connectTimeout: 5_000 };
}

/**
 * Checks a mysql:// or mariadb:// URL beyond its scheme (a host, a numeric port) and the
 * datasource's options (an object of mysql2 pool options). Throws INVALID_DATASOURCE_URL or
 * CONFIG_INVALID naming the datasource; returns a copy of the options.
 */
export function checkMysqlDatasource(datasource: string, url: URL, options: unknown): Record<string, unknown> {
  if (url.hostname === '') {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${datasource}" url to name a host; got ${JSON.stringify(redactUrl(url.href))}`);
  }
  if (url.port !== '' && !(Number(url.port) > 0)) {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${datasource}" url port to be a number; got ${url.port}`);
  }
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options to be an object of mysql2 pool options; got ${describeValue(options)}`);
  }
  return { ...options };
}
