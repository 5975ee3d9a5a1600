import type { Driver, DriverSettings } from '../driver.js';
import { mysqlCapabilities, mysqlDialect } from './dialect.js';
import { LazyDriver } from '../lazy-driver.js';
import { checkMysqlDatasource } from './options.js';

/**
 * MySQL and MariaDB, through mysql2: everything that knows them lives in this folder, and
 * only this folder imports mysql2. This is its DriverFactory, which db/registry.ts registers
 * (typed there, so that this folder does not import the registry that imports it).
 */
export const mysqlDriverFactory = {
  schemes: ['mysql:', 'mariadb:'],
  dialect: mysqlDialect,
  example: 'mysql://user@host:3306/database',
  check: checkMysqlDatasource,
  /** A MysqlDriver, made (and mysql2 loaded) on its first connect(). */
  create: (settings: DriverSettings): Driver => new LazyDriver(mysqlDialect, mysqlCapabilities, async () => new (await import('./driver.js')).MysqlDriver(settings)),
} as const;

export { mysqlDialect, lockNameFor } from './dialect.js';
export { classifyError } from './classify.js';
