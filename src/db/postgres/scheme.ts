import type { DriverFactory } from '../registry.js';
import { checkPostgresDatasource } from './options.js';

/**
 * PostgreSQL as config checking knows it: the URL schemes, an example URL and the check of a
 * datasource's URL and options, without the dialect (statement lexers, script splitters,
 * ledger SQL) or the driver: db/registry.ts registers this, and loads the rest (./index.js)
 * only for a datasource that spools a ledger job or a script, or runs (issue 15).
 */
export const postgresScheme = {
  schemes: ['postgres:', 'postgresql:'],
  example: 'postgres://user@host:5432/database',
  check: checkPostgresDatasource,
  load: async (): Promise<DriverFactory> => (await import('./index.js')).postgresDriverFactory,
} as const;
