import type { Driver, DriverSettings } from '../driver.js';
import { postgresDialect } from './dialect.js';
import { PostgresDriver } from './driver.js';
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
  create: (settings: DriverSettings): Driver => new PostgresDriver(settings),
} as const;

export { PostgresDriver } from './driver.js';
export { postgresDialect, advisoryKeyFor } from './dialect.js';
export { classifyError } from './classify.js';
