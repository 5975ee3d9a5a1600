import { createRequire } from 'node:module';
import type { ConnectionConfig, ConnectionOptions, PoolOptions } from 'mysql2';
import { QueryBatchError, describeValue } from '../../errors.js';
import { checkUrlEscapes, redactUrl } from '../url.js';

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
 * The query parameters mysql2 3.x takes from a URL (lib/connection_config.js: the
 * `validOptions` it keeps, less the URL's own parts and what no URL can spell: functions,
 * streams, internals). ConnectionConfig.parseUrl reads each value as JSON, else as a string.
 */
export const URL_QUERY_OPTIONS: readonly string[] = [
  'bigNumberStrings', 'charset', 'charsetNumber', 'compress', 'connectAttributes', 'connectTimeout', 'dateStrings', 'debug',
  'decimalNumbers', 'enableKeepAlive', 'flags', 'insecureAuth', 'keepAliveInitialDelay', 'localAddress', 'maxPreparedStatements',
  'multipleStatements', 'namedPlaceholders', 'nestTables', 'password1', 'password2', 'password3', 'passwordSha1', 'rowsAsArray',
  'socketPath', 'ssl', 'stringifyObjects', 'supportBigNumbers', 'timezone', 'trace', 'typeCast', 'disableEval',
  'enableCleartextPlugin', 'connectionLimit', 'maxIdle', 'idleTimeout', 'queueLimit', 'resetOnRelease', 'waitForConnections',
  'jsonStrings', 'gracefulEnd',
];

/** What parseUrl reads from the URL's parts; the same names in its query are ignored by mysql2. */
const URL_PARTS = ['host', 'port', 'database', 'user', 'password'] as const;

type ConnectionConfigClass = Pick<ConnectionConfig, 'getSSLProfile' | 'getCharsetNumber'>;
let connectionConfigClass: ConnectionConfigClass | undefined;

/**
 * mysql2's ConnectionConfig class (exported by mysql2, typed there only as an instance),
 * for the checks of a URL's `ssl` profile name and `charset`. mysql2 is loaded (synchronously:
 * the checks are) only then: a command that opens no MySQL connection does not load it.
 */
function connectionConfig(): ConnectionConfigClass {
  connectionConfigClass ??= (createRequire(import.meta.url)('mysql2') as { ConnectionConfig: ConnectionConfigClass }).ConnectionConfig;
  return connectionConfigClass;
}

/**
 * Checks a mysql:// or mariadb:// URL beyond its scheme (a host, a numeric port, its parts'
 * %-escapes, its query parameters) and the datasource's options (an object of mysql2 pool
 * options). Throws INVALID_DATASOURCE_URL or CONFIG_INVALID naming the datasource; returns a
 * copy of the options.
 */
export function checkMysqlDatasource(datasource: string, url: URL, options: unknown): Record<string, unknown> {
  if (url.hostname === '') {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${datasource}" url to name a host; got ${JSON.stringify(redactUrl(url.href))}`);
  }
  if (url.port !== '' && !(Number(url.port) > 0)) {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${datasource}" url port to be a number; got ${url.port}`);
  }
  checkUrlEscapes(url, `datasource "${datasource}" url`, (message) => new QueryBatchError('INVALID_DATASOURCE_URL', message));
  checkUrlQuery(datasource, url);
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options to be an object of mysql2 pool options; got ${describeValue(options)}`);
  }
  return { ...options };
}


/** Each query parameter is a connection option mysql2 takes from a URL, `ssl` and `charset` ones it can use. */
function checkUrlQuery(datasource: string, url: URL): void {
  const where = `datasource "${datasource}" url`;
  for (const [key, text] of url.searchParams) {
    if ((URL_PARTS as readonly string[]).includes(key)) {
      throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} to give its ${key} before the query (mysql2 ignores ?${key}=); got ?${key}=`);
    }
    if (!URL_QUERY_OPTIONS.includes(key)) {
      throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} query parameters to be mysql2 connection options (${URL_QUERY_OPTIONS.join(', ')}); got ${JSON.stringify(key)}`);
    }
    const value = urlValue(text);
    if (key === 'ssl' && !isUrlSsl(value)) {
      throw new QueryBatchError(
        'INVALID_DATASOURCE_URL',
        `Expected ${where} ssl to be a JSON object of TLS options (ssl={"rejectUnauthorized":true}), false, or an SSL profile mysql2 knows ("Amazon RDS"); got ${shownSsl(text)}`,
      );
    }
    if (key === 'charset' && !isCharset(value)) {
      throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} charset to be a character set mysql2 knows (utf8mb4, latin1, …); got ${JSON.stringify(text.slice(0, 80))}`);
    }
  }
}

/** A query parameter's value as mysql2 reads it: JSON, else the string. */
function urlValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** An ssl value for a message; not the text of a broken JSON object (it may hold a key or a passphrase). */
function shownSsl(text: string): string {
  return text.trimStart().startsWith('{') ? 'an object that is not valid JSON' : JSON.stringify(text.slice(0, 80));
}

/** What mysql2 makes TLS options of: an object, a profile name, or no TLS (false, null, 0). */
function isUrlSsl(value: unknown): boolean {
  if (typeof value === 'string') {
    try {
      connectionConfig().getSSLProfile(value);
      return true;
    } catch {
      return false;
    }
  }
  return value === false || value === null || value === 0 || (typeof value === 'object' && !Array.isArray(value));
}

function isCharset(value: unknown): boolean {
  try {
    connectionConfig().getCharsetNumber(String(value));
    return true;
  } catch {
    return false;
  }
}
