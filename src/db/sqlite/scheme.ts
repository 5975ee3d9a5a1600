import type { DriverFactory } from '../registry.js';
import { checkSqliteDatasource } from './options.js';

/**
 * SQLite as config checking knows it: the URL schemes, an example URL and the check of a
 * datasource's URL and options, without the dialect (statement lexers, script splitters,
 * ledger SQL) or the driver: db/registry.ts registers this, and loads the rest (./index.js)
 * only for a datasource that spools a ledger job or a script, or runs (issue 15).
 */
export const sqliteScheme = {
  schemes: ['sqlite:'],
  example: 'sqlite:querybatch.db',
  check: checkSqliteDatasource,
  load: async (): Promise<DriverFactory> => (await import('./index.js')).sqliteDriverFactory,
} as const;
