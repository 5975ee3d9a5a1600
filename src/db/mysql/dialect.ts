import { createHash } from 'node:crypto';
import type { Dialect, DriverCapabilities, ScriptRole, StatementTraits } from '../driver.js';
import { ScriptSplitter } from './script.js';
import { classifyError } from './classify.js';
import { inspectStatement, runsInLedgerTransaction } from './statement.js';
import { mysqlInsertShape } from './insert-shape.js';

/**
 * The database lock that makes one runner at a time drain a datasource of a spool, across
 * processes and hosts. GET_LOCK names are at most 64 characters (MySQL refuses a longer
 * one), and a spool id (24) with a datasource name (up to 64) can be longer: so the pair
 * is hashed, `querybatch:` and 40 hex digits (51 characters).
 */
export function lockNameFor(spoolId: string, datasource: string): string {
  return 'querybatch:' + createHash('sha256').update(`${spoolId}:${datasource}`).digest('hex').slice(0, 40);
}

/** What a statement's text says, read with the server's default SQL mode (backslash escapes on). */
function inspect(sql: string): StatementTraits {
  const info = inspectStatement(sql);
  return { keyword: info.keyword, transactional: runsInLedgerTransaction(info), changesSession: info.changesSession };
}

/**
 * SET (but SET PASSWORD, SET ROLE, SET GLOBAL) and USE only set the session: SET autocommit
 * and SET TRANSACTION too, which a resumed script needs as much as SET NAMES.
 */
function scriptRole(sql: string): ScriptRole {
  const info = inspectStatement(sql);
  if (info.keyword === 'USE') return 'session';
  if (info.keyword === 'SET') return /^\s*(\/\*M?!\d*\s*)?SET\s+(PASSWORD|ROLE|DEFAULT\s+ROLE|GLOBAL|@@GLOBAL)\b/i.test(sql) ? 'other' : 'session';
  if (info.kind === 'transaction-control') return 'control';
  return runsInLedgerTransaction(info) ? 'transactional' : 'other';
}

/** MySQL/MariaDB without a connection: error classes, statement traits, GET_LOCK names. Pure. */
export const mysqlDialect: Dialect = {
  name: 'mysql',
  classifyError,
  inspect,
  lockKey: lockNameFor,
  scriptSplitter: () => new ScriptSplitter(),
  scriptRole,
  insertPrefix: (sql) => mysqlInsertShape(sql)?.prefix ?? null,
};

/** What its driver can do (MysqlDriver's), known before its module is loaded (db/lazy-driver.ts). */
export const mysqlCapabilities: DriverCapabilities = { groupCommit: true, streaming: true };
