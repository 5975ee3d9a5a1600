import type { DriverFactory } from '../registry.js';
import { checkMysqlDatasource } from './options.js';

/**
 * MySQL and MariaDB as config checking knows it: the URL schemes, an example URL and the check of a
 * datasource's URL and options, without the dialect (statement lexers, script splitters,
 * ledger SQL) or the driver: db/registry.ts registers this, and loads the rest (./index.js)
 * only for a datasource that spools a ledger job or a script, or runs (issue 15).
 */
export const mysqlScheme = {
  schemes: ['mysql:', 'mariadb:'],
  example: 'mysql://user@host:3306/database',
  check: checkMysqlDatasource,
  load: async (): Promise<DriverFactory> => (await import('./index.js')).mysqlDriverFactory,
} as const;
