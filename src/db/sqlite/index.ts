import type { Driver, DriverSettings } from '../driver.js';
import { sqliteCapabilities, sqliteDialect } from './dialect.js';
import { LazyDriver } from '../lazy-driver.js';
import { sqliteScheme } from './scheme.js';

/**
 * SQLite, embedded, through better-sqlite3 12: everything that knows it lives in this folder,
 * and only this folder imports better-sqlite3. This is its DriverFactory, which
 * db/registry.ts loads through ./scheme.js when it is needed.
 */
export const sqliteDriverFactory = {
  schemes: sqliteScheme.schemes,
  dialect: sqliteDialect,
  example: sqliteScheme.example,
  check: sqliteScheme.check,
  /** A SqliteDriver, made (and better-sqlite3 loaded) on its first connect(). */
  create: (settings: DriverSettings): Driver => new LazyDriver(sqliteDialect, sqliteCapabilities, async () => new (await import('./driver.js')).SqliteDriver(settings)),
} as const;

export { sqliteDialect, lockNameFor } from './dialect.js';
export { classifyError } from './classify.js';
