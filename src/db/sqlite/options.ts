import { isAbsolute, resolve } from 'node:path';
import { QueryBatchError, describeValue } from '../../errors.js';

/**
 * A SQLite datasource's settings: the checks of its URL and options (config time) and the
 * database file they name. Pure.
 *
 * URLs: `sqlite:relative/to/home.db` (relative to the home directory) and
 * `sqlite:///absolute/path.db`; `%`-escapes are decoded. `sqlite::memory:` is refused: an
 * in-memory database is gone when its session ends, and nothing spooled would persist.
 */

export interface SqliteOptions {
  /** How long a statement waits for another connection's lock before SQLITE_BUSY (retried as transient). @default 5000 */
  readonly busyTimeoutMs: number;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

const OPTION_NAMES = ['busyTimeoutMs'] as const;

/** The path a URL names, as written (relative paths still relative); throws on what no file can be. */
function pathOf(datasource: string, url: URL): string {
  const shown = JSON.stringify(url.href);
  const where = `datasource "${datasource}" url`;
  if (url.host !== '') {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} to be sqlite:relative/file.db or sqlite:///absolute/file.db (no host); got ${shown}`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} to have no query or fragment (SQLite options go in "options", e.g. { "busyTimeoutMs": 5000 }); got ${shown}`);
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} path to be %-escaped UTF-8 (a % as %25); got ${shown}`);
  }
  if (path === '' || path.endsWith('/')) {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} to name a database file, like sqlite:querybatch.db; got ${shown}`);
  }
  if (path === ':memory:' || path.startsWith('file:') || path.includes('mode=memory')) {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} to name a database file; got ${shown} (an in-memory database ends with its session: nothing spooled would persist)`);
  }
  if (path.includes('\0')) throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${where} path to hold no NUL character; got ${shown}`);
  return path;
}

/** The database file of a URL check() accepted: relative paths are read from `home`. */
export function databasePath(url: string, home: string): string {
  const path = decodeURIComponent(new URL(url).pathname);
  return isAbsolute(path) ? path : resolve(home, path);
}

/**
 * Checks a sqlite: URL beyond its scheme and the datasource's options ({ busyTimeoutMs }).
 * Throws INVALID_DATASOURCE_URL or CONFIG_INVALID naming the datasource; returns the options
 * with their defaults.
 */
export function checkSqliteDatasource(datasource: string, url: URL, options: unknown): Record<string, unknown> {
  pathOf(datasource, url);
  if (options === undefined) return { busyTimeoutMs: DEFAULT_BUSY_TIMEOUT_MS };
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options to be an object like { "busyTimeoutMs": 5000 }; got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!(OPTION_NAMES as readonly string[]).includes(key)) {
      throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options to be SQLite options (${OPTION_NAMES.join(', ')}); got ${JSON.stringify(key)}`);
    }
  }
  const busy = (options as { busyTimeoutMs?: unknown }).busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (typeof busy !== 'number' || !Number.isInteger(busy) || busy < 0 || busy > 2_147_483_647) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options.busyTimeoutMs to be a whole number of milliseconds >= 0; got ${typeof busy === 'number' ? String(busy) : describeValue(busy)}`);
  }
  return { busyTimeoutMs: busy };
}

/** The options as check() returned them. */
export function sqliteOptions(options: Readonly<Record<string, unknown>>): SqliteOptions {
  const busy = options.busyTimeoutMs;
  return { busyTimeoutMs: typeof busy === 'number' ? busy : DEFAULT_BUSY_TIMEOUT_MS };
}
