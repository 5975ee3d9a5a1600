/**
 * A PostgreSQL lexer, just deep enough to tell code from quoted text and comments: the
 * placeholder rewrite (`?` and `:name` to `$n`), the statement traits and the script
 * splitter all read SQL through it. It follows the server's scanner (scan.l) with
 * standard_conforming_strings on (the default since 9.1):
 * - `'…'` strings with `''`, where a backslash is an ordinary character;
 * - `E'…'` strings, where a backslash escapes the next character (`\'` included);
 * - `"…"` identifiers with `""`; `U&'…'` / `U&"…"` read like their plain forms;
 * - `$tag$…$tag$` dollar quoting (not after an identifier character: `a$b$` is a name);
 * - `--` comments to the end of the line and `/* … *\/` comments, which nest;
 * - `::` casts, `:=` assignment and `$1` parameters (none is a `:name`).
 * A `\` in code starts a psql meta-command (`\connect`, `\i`): psql's, not the server's.
 *
 * Incremental: lexOne() returns null when the token may go on past the text it was given
 * (unless `final`), so that a script can be read a piece at a time. Pure.
 */

export type TokenKind =
  | 'space'
  | 'comment'
  /** An identifier or keyword (or a number). */
  | 'word'
  /** A string, a quoted identifier or a dollar-quoted text. */
  | 'quoted'
  /** A `?` placeholder (or the jsonb `?` operator: the caller decides). */
  | 'qmark'
  /** `:name` */
  | 'named'
  /** `::`, `:=` */
  | 'colons'
  | 'semicolon'
  /** A psql meta-command, from its backslash to the end of its line. */
  | 'meta'
  | 'other';

export interface Token {
  readonly kind: TokenKind;
  readonly start: number;
  readonly end: number;
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const SPACE = /\s/;

/** The token at `at`, or null when more text is needed to know where it ends (never when `final`). */
export function lexOne(text: string, at: number, final: boolean): Token | null {
  const n = text.length;
  const c = text[at]!;
  const next = text[at + 1];
  const token = (kind: TokenKind, end: number): Token => ({ kind, start: at, end });
  // A token that reaches the end of the text may go on in the next piece.
  const upTo = (kind: TokenKind, end: number): Token | null => (end >= n && !final ? null : token(kind, Math.min(end, n)));
  if (SPACE.test(c)) {
    let j = at + 1;
    while (j < n && SPACE.test(text[j]!)) j++;
    return upTo('space', j);
  }
  if (next === undefined && !final && '-/E:e$U'.includes(c)) return null;
  if (c === '-' && next === '-') {
    const nl = text.indexOf('\n', at);
    return upTo('comment', nl < 0 ? n : nl);
  }
  if (c === '/' && next === '*') return upTo('comment', blockCommentEnd(text, at));
  if (c === "'") return upTo('quoted', quotedEnd(text, at, "'", false));
  if (c === '"') return upTo('quoted', quotedEnd(text, at, '"', false));
  if ((c === 'E' || c === 'e') && next === "'") return upTo('quoted', quotedEnd(text, at + 1, "'", true));
  if (c === '$') return dollar(text, at, final);
  if (c === ':') {
    if (next === ':' || next === '=') return token('colons', at + 2);
    if (next !== undefined && WORD_START.test(next)) return upTo('named', wordEnd(text, at + 1));
    return token('other', at + 1);
  }
  if (c === '?') return token('qmark', at + 1);
  if (c === ';') return token('semicolon', at + 1);
  if (c === '\\') {
    const nl = text.indexOf('\n', at);
    return upTo('meta', nl < 0 ? n : nl);
  }
  if (WORD_CHAR.test(c)) return upTo('word', wordEnd(text, at));
  return token('other', at + 1);
}

function wordEnd(text: string, from: number): number {
  let j = from;
  while (j < text.length && WORD_CHAR.test(text[j]!)) j++;
  return j;
}

/** After the closing quote of a quoted text opening at `at`, or past the end when unclosed. */
function quotedEnd(text: string, at: number, quote: string, backslashEscapes: boolean): number {
  let j = at + 1;
  while (j < text.length) {
    const d = text[j]!;
    if (backslashEscapes && d === '\\') {
      j += 2;
      continue;
    }
    if (d === quote) {
      if (j + 1 >= text.length) return j + 1 + 1; // a doubled quote may follow in the next piece
      if (text[j + 1] === quote) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return text.length + 1;
}

/** After a (nested) block comment opening at `at`, or past the end when unclosed. */
function blockCommentEnd(text: string, at: number): number {
  let depth = 0;
  let j = at;
  while (j < text.length - 1) {
    if (text[j] === '/' && text[j + 1] === '*') {
      depth++;
      j += 2;
    } else if (text[j] === '*' && text[j + 1] === '/') {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else {
      j++;
    }
  }
  return text.length + 1;
}

/** `$1`, a dollar-quoted text `$tag$…$tag$`, or a lone `$`. */
function dollar(text: string, at: number, final: boolean): Token | null {
  const n = text.length;
  let j = at + 1;
  if (j < n && /[0-9]/.test(text[j]!)) {
    while (j < n && /[0-9]/.test(text[j]!)) j++;
    return j >= n && !final ? null : { kind: 'word', start: at, end: j };
  }
  if (j < n && WORD_START.test(text[j]!)) while (j < n && /[A-Za-z0-9_\u0080-\uffff]/.test(text[j]!)) j++;
  if (j >= n) return final ? { kind: 'other', start: at, end: n } : null;
  if (text[j] !== '$') return { kind: 'other', start: at, end: at + 1 };
  const tag = text.slice(at, j + 1);
  const close = text.indexOf(tag, j + 1);
  if (close < 0) return final ? { kind: 'quoted', start: at, end: n } : null;
  return { kind: 'quoted', start: at, end: close + tag.length };
}

/** Every token of a whole text. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let at = 0;
  while (at < sql.length) {
    const token = lexOne(sql, at, true)!;
    out.push(token);
    at = token.end;
  }
  return out;
}
