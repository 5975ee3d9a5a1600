import type { Driver, DriverSettings } from '../driver.js';
import { sqliteCapabilities, sqliteDialect } from './dialect.js';
import { LazyDriver } from '../lazy-driver.js';
import { checkSqliteDatasource } from './options.js';

/**
 * SQLite, embedded, through better-sqlite3 12: everything that knows it lives in this folder,
 * and only this folder imports better-sqlite3. This is its DriverFactory, which
 * db/registry.ts registers.
 */
export const sqliteDriverFactory = {
  schemes: ['sqlite:'],
  dialect: sqliteDialect,
  example: 'sqlite:querybatch.db',
  check: checkSqliteDatasource,
  /** A SqliteDriver, made (and better-sqlite3 loaded) on its first connect(). */
  create: (settings: DriverSettings): Driver => new LazyDriver(sqliteDialect, sqliteCapabilities, async () => new (await import('./driver.js')).SqliteDriver(settings)),
} as const;

export { sqliteDialect, lockNameFor } from './dialect.js';
export { classifyError } from './classify.js';
