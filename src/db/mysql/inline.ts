import { escape as mysqlEscape } from 'mysql2';
import type { StatementParams } from '../driver.js';
import type { ParamValue } from '../../spool/record.js';
import { inlineParams, inspectStatement, runsInLedgerTransaction } from './statement.js';

/**
 * Params written into a statement's text, for the one-trip ledger transaction (a prepared
 * statement can't share a multi-statement query). Values are escaped by mysql2's own
 * escaping, the one its client-side formatting uses, with the session's rules.
 */

/** How a session writes values into SQL text: read from its connection. */
export interface EscapeRules {
  /** The time zone a Date is written in (the connection's `timezone` option). */
  readonly timezone: string;
  /** The session's SQL mode has NO_BACKSLASH_ESCAPES: a string literal only doubles its quotes. */
  readonly noBackslashEscapes: boolean;
}

/** mysql2's escape with the arguments its typings leave out (sql-escaper's signature). */
const escapeValue = mysqlEscape as unknown as (value: unknown, stringifyObjects: boolean, timezone: string, sqlMode: { noBackslashEscapes: boolean }) => string;

/** A value as an SQL literal. */
export function escapeLiteral(value: unknown, rules: EscapeRules): string {
  // Uint8Array that is not a Buffer: as bytes, like the prepared-statement path sends it.
  const v = value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value) : value;
  return escapeValue(v, true, rules.timezone, { noBackslashEscapes: rules.noBackslashEscapes });
}

export function isNamed(params: StatementParams): params is Readonly<Record<string, ParamValue>> {
  return !Array.isArray(params);
}

/**
 * The statement with its params written in, read with the session's escaping rules; null
 * unless it is a single statement that never commits by itself, with positional params that
 * match its placeholders (anything else takes the prepared-statement path).
 */
export function inlineStatement(sql: string, params: StatementParams, rules: EscapeRules): string | null {
  const info = inspectStatement(sql, !rules.noBackslashEscapes);
  if (isNamed(params) || !runsInLedgerTransaction(info)) return null;
  return inlineParams(info, params, (value) => escapeLiteral(value, rules));
}
