import { createHash } from 'node:crypto';
import type { Dialect, DriverCapabilities } from '../driver.js';
import { classifyError } from './classify.js';
import { SqliteScriptSplitter } from './script.js';
import { inspect, scriptRole } from './statement.js';
import { sqliteInsertShape } from './insert-shape.js';

/**
 * The lock of datasource `datasource` of spool `spoolId`: the session holds an exclusive
 * transaction on a small lock database beside the datasource's file, named with this key
 * (lock.ts). A file lock dies with its process.
 */
export function lockNameFor(spoolId: string, datasource: string): string {
  return 'querybatch-lock-' + createHash('sha256').update(`${spoolId}:${datasource}`).digest('hex').slice(0, 16);
}

/** SQLite without a connection: error classes, statement traits, lock names. Pure. */
export const sqliteDialect: Dialect = {
  name: 'sqlite',
  classifyError,
  inspect,
  lockKey: lockNameFor,
  scriptSplitter: () => new SqliteScriptSplitter(),
  scriptRole,
  insertPrefix: (sql) => sqliteInsertShape(sql)?.prefix ?? null,
};

/** What its driver can do (SqliteDriver's), known before its module is loaded (db/lazy-driver.ts). */
export const sqliteCapabilities: DriverCapabilities = { groupCommit: true, streaming: true };
