import type { Driver, DriverSettings } from '../driver.js';
import { postgresCapabilities, postgresDialect } from './dialect.js';
import { LazyDriver } from '../lazy-driver.js';
import { postgresScheme } from './scheme.js';

/**
 * PostgreSQL, through pg: everything that knows it lives in this folder, and only this
 * folder imports pg. This is its DriverFactory, which db/registry.ts loads through ./scheme.js
 * when it is needed.
 */
export const postgresDriverFactory = {
  schemes: postgresScheme.schemes,
  dialect: postgresDialect,
  example: postgresScheme.example,
  check: postgresScheme.check,
  /** A PostgresDriver, made (and pg loaded) on its first connect(). */
  create: (settings: DriverSettings): Driver => new LazyDriver(postgresDialect, postgresCapabilities, async () => new (await import('./driver.js')).PostgresDriver(settings)),
} as const;

export { postgresDialect, advisoryKeyFor } from './dialect.js';
export { classifyError } from './classify.js';
