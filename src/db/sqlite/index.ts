import type { Driver, DriverSettings } from '../driver.js';
import { sqliteDialect } from './dialect.js';
import { SqliteDriver } from './driver.js';
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
  create: (settings: DriverSettings): Driver => new SqliteDriver(settings),
} as const;

export { SqliteDriver } from './driver.js';
export { sqliteDialect, lockNameFor } from './dialect.js';
export { classifyError } from './classify.js';
