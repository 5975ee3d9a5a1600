import type { Driver, DriverSettings } from '../driver.js';
import { mysqlCapabilities, mysqlDialect } from './dialect.js';
import { LazyDriver } from '../lazy-driver.js';
import { mysqlScheme } from './scheme.js';

/**
 * MySQL and MariaDB, through mysql2: everything that knows them lives in this folder, and
 * only this folder imports mysql2. This is its DriverFactory, which db/registry.ts loads through
 * ./scheme.js when it is needed (typed there; this folder imports only the registry's types).
 */
export const mysqlDriverFactory = {
  schemes: mysqlScheme.schemes,
  dialect: mysqlDialect,
  example: mysqlScheme.example,
  check: mysqlScheme.check,
  /** A MysqlDriver, made (and mysql2 loaded) on its first connect(). */
  create: (settings: DriverSettings): Driver => new LazyDriver(mysqlDialect, mysqlCapabilities, async () => new (await import('./driver.js')).MysqlDriver(settings)),
} as const;

export { mysqlDialect, lockNameFor } from './dialect.js';
export { classifyError } from './classify.js';
