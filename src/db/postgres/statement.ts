import { byText } from '../by-text.js';
import type { StatementParams } from '../driver.js';
import type { ParamValue } from '../../spool/record.js';
import { tokenize, type Token } from './lexer.js';

/**
 * What a PostgreSQL statement is, read from its text without a database, and its
 * placeholders rewritten for the server. Pure.
 *
 * PostgreSQL DDL is transactional: CREATE TABLE, ALTER, DROP … run inside the ledger's
 * transaction and commit with its row, exactly once. What can't: transaction control, the
 * statements the server refuses inside a transaction block (CREATE/DROP DATABASE, VACUUM,
 * CONCURRENTLY, ALTER SYSTEM, tablespaces, …), and what the text can't tell (CALL and DO
 * may COMMIT inside; COPY needs its own protocol).
 */

export type StatementKind =
  /** Runs inside a transaction and leaves it open (DML, SELECT, DDL, SET, …). */
  | 'transactional'
  /** Starts or ends transactions itself (BEGIN, COMMIT, SET TRANSACTION, …). */
  | 'transaction-control'
  /** Can't run inside a transaction block, or the text can't tell: runs on its own. */
  | 'non-transactional';

export interface StatementInfo {
  readonly kind: StatementKind;
  /** The first keyword, upper-cased ('' when the text holds no code). */
  readonly keyword: string;
  /** The first statement's words, upper-cased (quoted text, comments and punctuation left out). */
  readonly words: readonly string[];
  /** More than one statement separated by `;` (a trailing `;` alone does not count). */
  readonly multiple: boolean;
  readonly changesSession: boolean;
}

const TRANSACTION_CONTROL = new Set(['BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE']);

/** First words of statements that may run in a transaction block (the rest are checked below). */
const DATA = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'SELECT', 'WITH', 'VALUES', 'TABLE', 'EXPLAIN', 'SHOW']);

/** Session-scoped functions: their effect outlives the statement (advisory locks, set_config, dblink). */
const SESSION_FUNCTIONS = /^(PG_ADVISORY_LOCK|PG_ADVISORY_LOCK_SHARED|PG_TRY_ADVISORY_LOCK|PG_TRY_ADVISORY_LOCK_SHARED|PG_ADVISORY_UNLOCK|PG_ADVISORY_UNLOCK_SHARED|PG_ADVISORY_UNLOCK_ALL|SET_CONFIG|DBLINK_CONNECT|DBLINK_CONNECT_U|LO_OPEN)$/;

/** Statements whose first words say they never run inside a transaction block. */
function refusesTransactionBlock(w: readonly string[]): boolean {
  const [a, b, c] = w;
  if (a === 'VACUUM' || (a === 'ALTER' && b === 'SYSTEM') || a === 'CHECKPOINT') return true;
  if ((a === 'CREATE' || a === 'DROP') && (b === 'DATABASE' || b === 'TABLESPACE' || b === 'SUBSCRIPTION')) return true;
  if (a === 'ALTER' && b === 'DATABASE' && w.includes('TABLESPACE')) return true;
  if (a === 'ALTER' && b === 'SUBSCRIPTION' && w.includes('REFRESH')) return true;
  // CREATE [UNIQUE] INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, REINDEX … CONCURRENTLY
  if ((a === 'CREATE' || a === 'DROP' || a === 'REINDEX') && w.includes('CONCURRENTLY')) return true;
  if (a === 'REINDEX' && (b === 'DATABASE' || b === 'SYSTEM')) return true;
  // CLUSTER without a table reclusters every table, one transaction each.
  if (a === 'CLUSTER' && (b === undefined || b === 'VERBOSE')) return true;
  if (a === 'DISCARD' && b === 'ALL') return true;
  // ALTER TYPE … ADD VALUE runs in a transaction from PostgreSQL 12 on; the value can't be used until it commits.
  void c;
  return false;
}

function kindOf(w: readonly string[]): StatementKind {
  const a = w[0];
  if (a === undefined) return 'non-transactional';
  if (TRANSACTION_CONTROL.has(a)) return 'transaction-control';
  if (a === 'PREPARE' && w[1] === 'TRANSACTION') return 'transaction-control';
  if ((a === 'COMMIT' || a === 'ROLLBACK') && w[1] === 'PREPARED') return 'transaction-control';
  if (a === 'SET' && (w[1] === 'TRANSACTION' || (w[1] === 'SESSION' && w[2] === 'CHARACTERISTICS'))) return 'transaction-control';
  // CALL and DO may COMMIT inside; COPY FROM STDIN/TO STDOUT needs the copy protocol; LOCK outside a transaction is an error.
  if (a === 'CALL' || a === 'DO' || a === 'COPY') return 'non-transactional';
  if (refusesTransactionBlock(w)) return 'non-transactional';
  return 'transactional';
}

/** It may leave something in the session for the next job, or for the next job of its group. */
function leavesSessionState(w: readonly string[]): boolean {
  const a = w[0] ?? '';
  if (a === 'CREATE' || a === 'ALTER' || a === 'DROP' || a === 'COMMENT' || a === 'GRANT' || a === 'REVOKE' || a === 'TRUNCATE') {
    return w.includes('TEMP') || w.includes('TEMPORARY') || w.includes('PG_TEMP');
  }
  if (!DATA.has(a)) return true; // SET, RESET, LISTEN, PREPARE, DECLARE, LOAD, DISCARD, CALL, DO, LOCK, …
  // SELECT … INTO TEMP t; functions with a session-scoped effect.
  return w.includes('TEMP') || w.includes('TEMPORARY') || w.some((x) => SESSION_FUNCTIONS.test(x));
}

/** The tokens of code (no space, no comment), split per statement at `;`. */
function statementsOf(tokens: readonly Token[]): Token[][] {
  const out: Token[][] = [[]];
  for (const t of tokens) {
    if (t.kind === 'semicolon') out.push([]);
    else if (t.kind !== 'space' && t.kind !== 'comment') out[out.length - 1]!.push(t);
  }
  return out.filter((s) => s.length > 0);
}

/** The upper-cased words (identifiers, keywords; a `pg_temp.t` gives PG_TEMP and T). */
function wordsOf(sql: string, tokens: readonly Token[]): string[] {
  return tokens.filter((t) => t.kind === 'word').map((t) => sql.slice(t.start, t.end).toUpperCase());
}

export const inspectStatement = byText(readStatement);

function readStatement(sql: string): StatementInfo {
  const statements = statementsOf(tokenize(sql));
  const words = wordsOf(sql, statements[0] ?? []);
  const multiple = statements.length > 1;
  return { kind: kindOf(words), keyword: words[0] ?? '', words, multiple, changesSession: multiple || leavesSessionState(words) };
}

/** One statement that can share the ledger's transaction. */
export function runsInLedgerTransaction(info: StatementInfo): boolean {
  return info.kind === 'transactional' && !info.multiple;
}

export function isNamed(params: StatementParams): params is Readonly<Record<string, ParamValue>> {
  return !Array.isArray(params);
}

/**
 * The statement with its placeholders replaced by `write(value, n)` (n: 1-based, in order
 * of first use). Positional params: every `?` outside quotes and comments is one (a text
 * without `?` is sent as it is, with its own `$1`…). Named params: each `:name` whose name
 * is a param (one number per name), other `:x` left as they are (an array slice
 * `a[1:n]`), and `?` left alone (the jsonb operator). `values`: the values in their `$n`
 * order; `matched`: as many positional values as placeholders (else a `?` past the values
 * becomes a bare `$n` and the server reports the mismatch).
 */
/** A text's positional `?` placeholders, read once per text (by-text.ts). */
export const qmarksOf: (sql: string) => readonly Token[] = byText((sql) => tokenize(sql).filter((t) => t.kind === 'qmark'));

export function replacePlaceholders(sql: string, params: StatementParams, write: (value: ParamValue, n: number) => string): { text: string; values: ParamValue[]; matched: boolean } {
  let text = '';
  let from = 0;
  if (!isNamed(params)) {
    const marks = qmarksOf(sql);
    if (marks.length === 0) return { text: sql, values: [...params], matched: params.length === 0 };
    marks.forEach((t, k) => {
      text += sql.slice(from, t.start) + (k < params.length ? write(params[k]!, k + 1) : `$${k + 1}`);
      from = t.end;
    });
    return { text: text + sql.slice(from), values: [...params], matched: marks.length === params.length };
  }
  const values: ParamValue[] = [];
  const numbers = new Map<string, number>();
  for (const t of tokenize(sql)) {
    if (t.kind !== 'named') continue;
    const name = sql.slice(t.start + 1, t.end);
    if (!Object.hasOwn(params, name)) continue;
    let n = numbers.get(name);
    if (n === undefined) {
      values.push(params[name]!);
      n = values.length;
      numbers.set(name, n);
    }
    text += sql.slice(from, t.start) + write(params[name]!, n);
    from = t.end;
  }
  return { text: text + sql.slice(from), values, matched: true };
}

/** Does the text (without quotes and comments) hold a `$n` parameter of its own? */
export const hasDollarParams: (sql: string) => boolean = byText((sql) => tokenize(sql).some((t) => t.kind === 'word' && sql[t.start] === '$'));
