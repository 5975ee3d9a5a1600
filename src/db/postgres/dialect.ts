import { createHash } from 'node:crypto';
import type { Dialect, DriverCapabilities, ScriptRole, StatementTraits } from '../driver.js';
import { classifyError } from './classify.js';
import { PostgresScriptSplitter } from './script.js';
import { inspectStatement, runsInLedgerTransaction } from './statement.js';
import { postgresInsertShape } from './insert-shape.js';

/**
 * The advisory lock that makes one runner at a time drain a datasource of a spool, across
 * processes and hosts: the first 8 bytes of sha256("querybatch:<spool>:<datasource>") as a
 * signed 64-bit integer (pg_try_advisory_lock(bigint)).
 */
export function advisoryKeyFor(spoolId: string, datasource: string): bigint {
  return createHash('sha256').update(`querybatch:${spoolId}:${datasource}`).digest().readBigInt64BE(0);
}

function inspect(sql: string): StatementTraits {
  const info = inspectStatement(sql);
  return { keyword: info.keyword, transactional: runsInLedgerTransaction(info), changesSession: info.changesSession };
}

/**
 * SET and RESET (but SET TRANSACTION, SET SESSION CHARACTERISTICS, which are
 * transaction control) only set the session: run again before a resumed script goes on.
 */
function scriptRole(sql: string): ScriptRole {
  const info = inspectStatement(sql);
  if (info.kind === 'transaction-control') return 'control';
  if (info.keyword === 'SET' || info.keyword === 'RESET') return 'session';
  return runsInLedgerTransaction(info) ? 'transactional' : 'other';
}

/** PostgreSQL without a connection: error classes, statement traits, advisory lock keys. Pure. */
export const postgresDialect: Dialect = {
  name: 'postgres',
  classifyError,
  inspect,
  lockKey: advisoryKeyFor,
  scriptSplitter: () => new PostgresScriptSplitter(),
  scriptRole,
  insertPrefix: (sql) => postgresInsertShape(sql)?.prefix ?? null,
};

/** What its driver can do (PostgresDriver's), known before its module is loaded (db/lazy-driver.ts). */
export const postgresCapabilities: DriverCapabilities = { groupCommit: true, streaming: true };
