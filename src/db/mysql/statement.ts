import { byText } from '../by-text.js';

/**
 * What a statement is, read from its text without a database: whether it can run inside the
 * ledger's transaction (exactly-once) or commits implicitly / controls transactions itself
 * (then it runs on its own and a crash mid-statement leaves it uncertain), how many
 * statements the text holds and where its `?` placeholders are. Pure.
 *
 * The scanner follows MySQL/MariaDB lexing: '…' and "…" strings (backslash escapes unless
 * NO_BACKSLASH_ESCAPES, doubled quotes), `…` identifiers, `-- ` / `#` / `/* … *\/` comments;
 * the body of an executable comment (`/*! … *\/`, `/*M! … *\/`) is read as code, as the
 * server does.
 */

export type StatementKind =
  /** Runs inside a transaction without committing it (DML, SELECT, DO, SET of variables, …). */
  | 'transactional'
  /** Commits the open transaction before and/or after itself (DDL, LOCK TABLES, GRANT, …). */
  | 'implicit-commit'
  /** Starts, ends or reconfigures transactions itself (BEGIN, COMMIT, SET autocommit, XA, …). */
  | 'transaction-control'
  /** Not recognised, or can't be known from the text (CALL, EXECUTE): treated like implicit-commit. */
  | 'unknown';

export interface StatementInfo {
  readonly kind: StatementKind;
  /** The first keyword, upper-cased ('' when the text holds no code). */
  readonly keyword: string;
  /** More than one statement separated by `;` (a trailing `;` alone does not count). */
  readonly multiple: boolean;
  /** Offsets of the `?` placeholders outside strings, identifiers and comments. */
  readonly placeholders: readonly number[];
  /** The text up to the end of its only statement (a trailing `;` and what follows it dropped). */
  readonly body: string;
  /**
   * It may leave state behind in the session (a variable, the autocommit mode, the current
   * database, a temporary table, a lock, …): anything but one plain data statement that
   * names no user variable and takes no user-level lock.
   */
  readonly changesSession: boolean;
}

interface Token {
  readonly word: string;
  readonly at: number;
}

/** Splits into upper-cased words of code, placeholder offsets and `;` offsets. */
function scan(sql: string, backslashEscapes: boolean): { words: Token[][]; placeholders: number[]; semicolons: number[] } {
  const statements: Token[][] = [[]];
  const placeholders: number[] = [];
  const semicolons: number[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < n) {
        const d = sql[i]!;
        if (d === '\\' && backslashEscapes && c !== '`') {
          i += 2;
          continue;
        }
        if (d === c) {
          if (sql[i + 1] === c) {
            i += 2;
            continue;
          }
          break;
        }
        i++;
      }
      i++;
      continue;
    }
    // `--` starts a comment only before white space or a control character, as the server reads it.
    // eslint-disable-next-line no-control-regex
    if (c === '#' || (c === '-' && sql[i + 1] === '-' && (i + 2 >= n || /[\s\x00-\x1f]/.test(sql[i + 2]!)))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const exec = /^\/\*(M?!)(\d{5,6})?/.exec(sql.slice(i, i + 10));
      if (exec) {
        i += exec[0].length; // the body is code; its closing */ is skipped below
        continue;
      }
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (c === '*' && sql[i + 1] === '/') {
      i += 2; // end of an executable comment
      continue;
    }
    if (c === '?') {
      placeholders.push(i);
      i++;
      continue;
    }
    if (c === ';') {
      semicolons.push(i);
      statements.push([]);
      i++;
      continue;
    }
    if (/[A-Za-z_@]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$@.]/.test(sql[j]!)) j++;
      statements[statements.length - 1]!.push({ word: sql.slice(i, j).toUpperCase(), at: i });
      i = j;
      continue;
    }
    i++;
  }
  return { words: statements, placeholders, semicolons };
}

/** Statements that commit the transaction in progress (MariaDB "SQL statements that cause an implicit commit"). */
const IMPLICIT_COMMIT_FIRST = new Set([
  'ALTER', 'CREATE', 'DROP', 'RENAME', 'TRUNCATE', 'GRANT', 'REVOKE', 'LOCK', 'UNLOCK', 'ANALYZE', 'CHECK',
  'OPTIMIZE', 'REPAIR', 'FLUSH', 'RESET', 'INSTALL', 'UNINSTALL', 'CHANGE', 'CACHE', 'LOAD', 'PURGE', 'BACKUP',
  'SHUTDOWN', 'KILL', 'STOP', 'CHECKSUM',
]);

const TRANSACTION_CONTROL_FIRST = new Set(['BEGIN', 'START', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'XA']);

/** Statements that run inside a transaction and leave it open. */
const TRANSACTIONAL_FIRST = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'SELECT', 'WITH', 'DO', 'VALUES', 'TABLE', 'SHOW', 'EXPLAIN', 'DESCRIBE', 'DESC']);

/** SET statements that change transaction behaviour (everything else SET does is a variable). */
function isTransactionSet(words: readonly string[]): boolean {
  const names = words.slice(1).map((w) => w.replace(/^@@(SESSION\.|GLOBAL\.|LOCAL\.)?/, ''));
  if (names[0] === 'TRANSACTION' || (names[1] === 'TRANSACTION' && ['SESSION', 'GLOBAL', 'LOCAL'].includes(names[0] ?? ''))) return true;
  return names.some((w) => w === 'AUTOCOMMIT' || w === 'COMPLETION_TYPE' || w === 'PASSWORD' || w === 'ROLE' || w === 'DEFAULT');
}

function kindOf(words: readonly string[]): StatementKind {
  const first = words[0];
  if (first === undefined) return 'unknown';
  if (TRANSACTION_CONTROL_FIRST.has(first)) return 'transaction-control';
  if (first === 'SET') return isTransactionSet(words) ? 'transaction-control' : 'transactional';
  if (first === 'CREATE' || first === 'DROP') {
    // CREATE/DROP TEMPORARY TABLE do not commit (MariaDB and MySQL >= 5.7).
    if (words[1] === 'TEMPORARY') return 'transactional';
    return 'implicit-commit';
  }
  if (IMPLICIT_COMMIT_FIRST.has(first)) return 'implicit-commit';
  if (TRANSACTIONAL_FIRST.has(first)) {
    // SELECT … INTO OUTFILE/DUMPFILE writes a file no rollback can take back.
    if (words.includes('OUTFILE') || words.includes('DUMPFILE')) return 'unknown';
    return 'transactional';
  }
  return 'unknown';
}

/** Statements that read or change data and leave nothing behind in the session (unless they name a user variable). */
const DATA_FIRST = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'SELECT', 'WITH', 'VALUES', 'TABLE', 'SHOW', 'EXPLAIN', 'DESCRIBE', 'DESC', 'DO']);

/** Functions whose effect outlives the statement in the session: user-level locks. */
const SESSION_FUNCTIONS = new Set(['GET_LOCK', 'RELEASE_LOCK', 'RELEASE_ALL_LOCKS']);

function leavesSessionState(words: readonly string[]): boolean {
  if (!DATA_FIRST.has(words[0] ?? '')) return true;
  return words.some((w) => (w.startsWith('@') && !w.startsWith('@@')) || SESSION_FUNCTIONS.has(w));
}

/** Reads a statement's text; `backslashEscapes` is false under the NO_BACKSLASH_ESCAPES SQL mode. Remembered per text (by-text.ts). */
export function inspectStatement(sql: string, backslashEscapes = true): StatementInfo {
  return backslashEscapes ? inspectWithEscapes(sql) : inspectWithoutEscapes(sql);
}

const inspectWithEscapes = byText((sql) => readStatement(sql, true));
const inspectWithoutEscapes = byText((sql) => readStatement(sql, false));

function readStatement(sql: string, backslashEscapes: boolean): StatementInfo {
  // A leading "(" (a parenthesised SELECT) is not a word, so the scanner skips it.
  const { words, placeholders, semicolons } = scan(sql, backslashEscapes);
  const nonEmpty = words.filter((w) => w.length > 0);
  const multiple = nonEmpty.length > 1;
  const first = nonEmpty[0] ?? [];
  const firstEnd = words.findIndex((w) => w.length > 0);
  const cut = !multiple && firstEnd >= 0 && firstEnd < semicolons.length ? semicolons[firstEnd]! : sql.length;
  return {
    kind: kindOf(first.map((t) => t.word)),
    keyword: first[0]?.word ?? '',
    multiple,
    placeholders: placeholders.filter((p) => p < cut),
    body: sql.slice(0, cut),
    changesSession: multiple || leavesSessionState(first.map((t) => t.word)),
  };
}

/** True when the statement can share the ledger's transaction: one statement that never commits by itself. */
export function runsInLedgerTransaction(info: StatementInfo): boolean {
  return info.kind === 'transactional' && !info.multiple;
}

/**
 * The statement with each placeholder replaced by `escape(value)`, or null when the count
 * of placeholders and values differ (the caller then lets the server report it).
 */
export function inlineParams(info: StatementInfo, values: readonly unknown[], escape: (value: unknown) => string): string | null {
  if (info.placeholders.length !== values.length) return null;
  let out = '';
  let from = 0;
  info.placeholders.forEach((at, k) => {
    out += info.body.slice(from, at) + escape(values[k]);
    from = at + 1;
  });
  return out + info.body.slice(from);
}
