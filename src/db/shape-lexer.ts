import type { ShapeToken } from './insert-shape.js';

/**
 * A lexer into ShapeTokens for the dialects whose own scanners read words only (MySQL,
 * SQLite): quotes, comments and placeholders as the dialect's rules say, just deep enough to
 * find a single-row INSERT's row (insert-shape.ts). Anything it does not know for sure (an
 * executable comment, an unclosed quote) gives null: the statement is not coalesced. Pure.
 */

export interface LexRules {
  /** Opening quote → what it quotes and its closing character. */
  readonly quotes: Readonly<Record<string, { readonly kind: 'string' | 'ident'; readonly close: string }>>;
  /** A backslash escapes the next character in a string. */
  readonly backslashEscapes: boolean;
  /** `#` starts a comment to the end of the line (MySQL). */
  readonly hashComments: boolean;
  /** `--` starts a comment only before white space (MySQL), else always (SQLite). */
  readonly dashDashNeedsSpace: boolean;
  /** Words that prefix a string literal with no space between (`X'0A'`, `N'…'`). */
  readonly stringPrefixes: ReadonlySet<string>;
  /** Characters that open a named placeholder before a name (`:a`, `@a`, `$a`); `?` followed by digits is numbered, so named too. */
  readonly namedMarks: string;
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const NUMBER_PART = /[A-Za-z0-9_.]/;

/** The tokens of code of `sql` (no space, no comment), or null when it holds what this lexer does not read. */
export function lexShape(sql: string, rules: LexRules): ShapeToken[] | null {
  const out: ShapeToken[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    // eslint-disable-next-line no-control-regex
    if ((c === '#' && rules.hashComments) || (c === '-' && next === '-' && (!rules.dashDashNeedsSpace || i + 2 >= n || /[\s\x00-\x1f]/.test(sql[i + 2]!)))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      // MySQL's executable comments hold code: not read here.
      if (sql[i + 2] === '!' || (sql[i + 2] === 'M' && sql[i + 3] === '!')) return null;
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) return null;
      i = end + 2;
      continue;
    }
    const quote = rules.quotes[c];
    if (quote !== undefined) {
      const end = quotedEnd(sql, i, quote.close, rules.backslashEscapes && quote.kind === 'string');
      if (end < 0) return null;
      out.push({ kind: quote.kind, start: i, end });
      i = end;
      continue;
    }
    if (c === '?') {
      let j = i + 1;
      while (j < n && /[0-9]/.test(sql[j]!)) j++;
      out.push({ kind: j > i + 1 ? 'named' : 'placeholder', start: i, end: j });
      i = j;
      continue;
    }
    if (rules.namedMarks.includes(c) && next !== undefined && WORD_PART.test(next)) {
      let j = i + 1;
      while (j < n && WORD_PART.test(sql[j]!)) j++;
      out.push({ kind: 'named', start: i, end: j });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      let j = i + 1;
      while (j < n && NUMBER_PART.test(sql[j]!)) j++;
      out.push({ kind: 'number', start: i, end: j });
      i = j;
      continue;
    }
    if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < n && WORD_PART.test(sql[j]!)) j++;
      const prefixed = sql[j] === "'" && rules.stringPrefixes.has(sql.slice(i, j).toUpperCase());
      if (prefixed) {
        const end = quotedEnd(sql, j, "'", rules.backslashEscapes);
        if (end < 0) return null;
        out.push({ kind: 'string', start: i, end });
        i = end;
        continue;
      }
      out.push({ kind: 'word', start: i, end: j });
      i = j;
      continue;
    }
    out.push({ kind: 'punct', start: i, end: i + 1 });
    i++;
  }
  return out;
}

/** After the closing `close` of the quote opening at `at` (a doubled `close` is one character); -1 when unclosed. */
function quotedEnd(sql: string, at: number, close: string, backslashEscapes: boolean): number {
  let j = at + 1;
  while (j < sql.length) {
    const d = sql[j]!;
    if (backslashEscapes && d === '\\') {
      j += 2;
      continue;
    }
    if (d === close) {
      if (sql[j + 1] === close) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return -1;
}
