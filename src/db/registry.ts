import { QueryBatchError } from '../errors.js';
import type { Dialect, Driver, DriverSettings } from './driver.js';
import { mysqlScheme } from './mysql/scheme.js';
import { postgresScheme } from './postgres/scheme.js';
import { sqliteScheme } from './sqlite/scheme.js';
import { redactUrl, schemeOf, shownScheme } from './url.js';

/**
 * The drivers, by URL scheme: a datasource's URL picks its driver. The built-in drivers are
 * registered here; another can be added with registerDriver() (a test's fake, or a driver
 * of one's own). A built-in driver is registered by its scheme module (<dialect>/scheme.ts:
 * schemes, example URL, check), which config checking uses synchronously; its dialect and
 * driver (<dialect>/index.ts: lexers, splitters, ledger SQL) load on loadDriverFactory(),
 * the first time a datasource of that scheme spools a ledger job or a script, or runs: a
 * command that needs no dialect (`querybatch status`) loads none (issue 15).
 */

/** What makes a driver for a datasource, and what is known of its database before any connection. */
export interface DriverFactory {
  /** URL schemes it takes, lower-case, with the colon: `['mysql:', 'mariadb:']`. */
  readonly schemes: readonly string[];
  readonly dialect: Dialect;
  /** An example URL, for messages: `mysql://user@host:3306/database`. */
  readonly example: string;
  /**
   * Checks the URL beyond its scheme and the datasource's driver options (undefined when it
   * has none); throws a QueryBatchError INVALID_DATASOURCE_URL or CONFIG_INVALID naming the
   * datasource; returns the options as the driver takes them (DriverSettings.options). Pure.
   */
  check(datasource: string, url: URL, options: unknown): Record<string, unknown>;
  /** A driver for a datasource whose URL and options check() accepted. Connects nothing yet. */
  create(settings: DriverSettings): Driver;
}

const SCHEME = /^[a-z][a-z0-9+.-]*:$/;

/** A registered driver as a URL finds it: what checks the URL (synchronously), and the DriverFactory, loaded on demand. */
export interface RegisteredDriver extends Pick<DriverFactory, 'schemes' | 'example' | 'check'> {
  /** The driver's factory; a built-in one's module is imported on the first call. */
  load(): Promise<DriverFactory>;
}

/** By scheme; a Map keeps the order schemes were first registered in, for messages. */
const factories = new Map<string, RegisteredDriver>();

/**
 * Adds a driver for its URL schemes. A later registration of a scheme wins (a test can put a
 * fake in front of a built-in driver, and put the built-in back after).
 */
export function registerDriver(factory: DriverFactory): void {
  for (const scheme of factory.schemes) {
    if (!SCHEME.test(scheme)) throw new TypeError(`Expected a driver's URL schemes to be lower-case with their colon, like "mysql:"; got ${JSON.stringify(scheme)}`);
  }
  const loaded = Promise.resolve(factory);
  register({ schemes: factory.schemes, example: factory.example, check: (datasource, url, options) => factory.check(datasource, url, options), load: () => loaded });
}

function register(driver: RegisteredDriver): void {
  for (const scheme of driver.schemes) factories.set(scheme, driver);
}

register(mysqlScheme);
register(postgresScheme);
register(sqliteScheme);

/** The driver for a URL's scheme, or undefined when none is registered for it. */
export function findDriverFactory(url: string): RegisteredDriver | undefined {
  const scheme = schemeOf(url);
  return scheme === null ? undefined : factories.get(scheme);
}

/**
 * The driver for a URL's scheme. Throws INVALID_DATASOURCE_URL naming the known schemes
 * when none is registered for it (naming `datasource` when given).
 */
export function driverFactoryFor(url: string, datasource?: string): RegisteredDriver {
  const factory = findDriverFactory(url);
  if (factory !== undefined) return factory;
  const scheme = schemeOf(url);
  const what = datasource === undefined ? 'a datasource url' : `datasource "${datasource}" url`;
  const got = scheme === null ? JSON.stringify(redactUrl(url)) : shownScheme(scheme, url);
  throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${what} to start with ${knownSchemes()}; got ${got}`);
}

/** The DriverFactory (dialect, create) for a URL's scheme, its module loaded if need be. Rejects like driverFactoryFor(). */
export async function loadDriverFactory(url: string, datasource?: string): Promise<DriverFactory> {
  return driverFactoryFor(url, datasource).load();
}

/** The registered schemes as URLs spell them, for messages: `mysql:// or mariadb://`. */
export function knownSchemes(): string {
  // Spelled as the driver's example is: `mysql://…`, `sqlite:file.db`.
  return orList([...factories].map(([scheme, factory]) => (/^[^:]*:\/\//.test(factory.example) ? `${scheme}//` : scheme)));
}

/** An example URL of each registered driver, for messages: `mysql://user@host:3306/database`. */
export function exampleUrls(): string {
  return orList([...new Set([...factories.values()].map((factory) => factory.example))]);
}

/** `a`, `a or b`, `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}
