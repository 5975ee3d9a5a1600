import type { Driver, DriverSettings } from '../driver.js';
import { postgresCapabilities, postgresDialect } from './dialect.js';
import { LazyDriver } from '../lazy-driver.js';
import { checkPostgresDatasource } from './options.js';

/**
 * PostgreSQL, through pg: everything that knows it lives in this folder, and only this
 * folder imports pg. This is its DriverFactory, which db/registry.ts registers.
 */
export const postgresDriverFactory = {
  schemes: ['postgres:', 'postgresql:'],
  dialect: postgresDialect,
  example: 'postgres://user@host:5432/database',
  check: checkPostgresDatasource,
  /** A PostgresDriver, made (and pg loaded) on its first connect(). */
  create: (settings: DriverSettings): Driver => new LazyDriver(postgresDialect, postgresCapabilities, async () => new (await import('./driver.js')).PostgresDriver(settings)),
} as const;

export { postgresDialect, advisoryKeyFor } from './dialect.js';
export { classifyError } from './classify.js';
