import { QueryBatchError } from '../errors.js';
import type { Dialect, Driver, DriverSettings } from './driver.js';
import { mysqlDriverFactory } from './mysql/index.js';
import { postgresDriverFactory } from './postgres/index.js';
import { sqliteDriverFactory } from './sqlite/index.js';
import { redactUrl, schemeOf, shownScheme } from './url.js';

/**
 * The drivers, by URL scheme: a datasource's URL picks its driver. The built-in drivers are
 * registered here; another can be added with registerDriver() (a test's fake, or a driver
 * of one's own).
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

/** By scheme; a Map keeps the order schemes were first registered in, for messages. */
const factories = new Map<string, DriverFactory>();

/**
 * Adds a driver for its URL schemes. A later registration of a scheme wins (a test can put a
 * fake in front of a built-in driver, and put the built-in back after).
 */
export function registerDriver(factory: DriverFactory): void {
  for (const scheme of factory.schemes) {
    if (!SCHEME.test(scheme)) throw new TypeError(`Expected a driver's URL schemes to be lower-case with their colon, like "mysql:"; got ${JSON.stringify(scheme)}`);
  }
  for (const scheme of factory.schemes) factories.set(scheme, factory);
}

registerDriver(mysqlDriverFactory);
registerDriver(postgresDriverFactory);
registerDriver(sqliteDriverFactory);

/** The driver for a URL's scheme, or undefined when none is registered for it. */
export function findDriverFactory(url: string): DriverFactory | undefined {
  const scheme = schemeOf(url);
  return scheme === null ? undefined : factories.get(scheme);
}

/**
 * The driver for a URL's scheme. Throws INVALID_DATASOURCE_URL naming the known schemes
 * when none is registered for it (naming `datasource` when given).
 */
export function driverFactoryFor(url: string, datasource?: string): DriverFactory {
  const factory = findDriverFactory(url);
  if (factory !== undefined) return factory;
  const scheme = schemeOf(url);
  const what = datasource === undefined ? 'a datasource url' : `datasource "${datasource}" url`;
  const got = scheme === null ? JSON.stringify(redactUrl(url)) : shownScheme(scheme, url);
  throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected ${what} to start with ${knownSchemes()}; got ${got}`);
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
