import type { PoolConfig } from 'pg';
import { QueryBatchError, describeValue } from '../../errors.js';
import { checkUrlEscapes, redactUrl } from '../url.js';

/**
 * A PostgreSQL datasource's settings: the checks of its URL and options (config time), and
 * the pg options its pool and its side connections (lock, cancel) are made with. Pure.
 */

/** Our defaults for a spool runner's pool, under the URL's query and the datasource's options. */
export const BASE_OPTIONS: PoolConfig = {
  max: 2,
  idleTimeoutMillis: 60_000,
  connectionTimeoutMillis: 10_000,
  keepAlive: true,
  application_name: 'querybatch',
};

/**
 * The query parameters pg 8 reads from a URL (pg-connection-string, then
 * ConnectionParameters): TLS, the session's startup settings, and the host as a unix socket
 * directory (`?host=/var/run/postgresql`).
 */
export const URL_QUERY_OPTIONS: readonly string[] = [
  'host', 'user', 'sslmode', 'ssl', 'sslcert', 'sslkey', 'sslrootcert', 'sslnegotiation', 'uselibpqcompat', 'application_name',
  'fallback_application_name', 'options', 'client_encoding', 'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
  'query_timeout', 'replication',
];

const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/** The pool's options: our defaults, the URL (its query included), then the datasource's options. */
export function poolOptions(url: string, options: Readonly<Record<string, unknown>>): PoolConfig {
  const fromUrl = new Set(new URL(url).searchParams.keys());
  const base = Object.fromEntries(Object.entries(BASE_OPTIONS).filter(([key]) => !fromUrl.has(key)));
  return { ...base, ...options, connectionString: url };
}

/** A connection of its own (the lock's, a cancel's): the pool's settings less what only a pool takes. */
export function singleConnectionOptions(url: string, options: Readonly<Record<string, unknown>>): PoolConfig {
  const { max: _m, idleTimeoutMillis: _i, min: _n, maxUses: _u, allowExitOnIdle: _a, ...single } = poolOptions(url, options);
  return { ...single, connectionTimeoutMillis: 5_000 };
}

/**
 * Checks a postgres:// or postgresql:// URL beyond its scheme (a host, a numeric port, its
 * parts' %-escapes, its query parameters) and the datasource's options (an object of pg
 * pool options). Throws INVALID_DATASOURCE_URL or CONFIG_INVALID naming the datasource;
 * returns a copy of the options.
 */
export function checkPostgresDatasource(datasource: string, url: URL, options: unknown): Record<string, unknown> {
  const where = `datasource "${datasource}" url`;
  const fail = (message: string) => new QueryBatchError('INVALID_DATASOURCE_URL', message);
  if (url.hostname === '' && !url.searchParams.has('host')) throw fail(`Expected ${where} to name a host (or ?host=/socket/dir); got ${JSON.stringify(redactUrl(url.href))}`);
  if (url.port !== '' && !(Number(url.port) > 0)) throw fail(`Expected ${where} port to be a number; got ${url.port}`);
  checkUrlEscapes(url, where, fail);
  if (url.pathname.slice(1).includes('/')) throw fail(`Expected ${where} path to be one database name; got ${JSON.stringify(url.pathname)}`);
  for (const [key, value] of url.searchParams) {
    if (key === 'password') throw fail(`Expected ${where} to give its password before the host (postgres://user:password@host/db), not as ?password= (it would show in logs)`);
    if (!URL_QUERY_OPTIONS.includes(key)) throw fail(`Expected ${where} query parameters to be pg connection options (${URL_QUERY_OPTIONS.join(', ')}); got ${JSON.stringify(key)}`);
    if (key === 'sslmode' && !SSL_MODES.includes(value)) throw fail(`Expected ${where} sslmode to be one of ${SSL_MODES.join(', ')}; got ${JSON.stringify(value.slice(0, 40))}`);
    if (key === 'ssl' && !['true', 'false', '1', '0'].includes(value)) throw fail(`Expected ${where} ssl to be true, false, 1 or 0; got ${JSON.stringify(value.slice(0, 40))}`);
    if (/_timeout$/.test(key) && !/^\d+$/.test(value)) throw fail(`Expected ${where} ${key} to be a whole number of milliseconds; got ${JSON.stringify(value.slice(0, 40))}`);
  }
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options to be an object of pg pool options; got ${describeValue(options)}`);
  }
  if ('connectionString' in options) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options to leave out connectionString (the datasource's url is the connection string)`);
  }
  return { ...options };
}
