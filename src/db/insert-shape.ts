/**
 * Coalescing (issue 15): is a statement a single-row `INSERT INTO t [(cols)] VALUES (row)`
 * whose row holds nothing but constants, and where does its row start? Each dialect lexes
 * the text into ShapeTokens (its quotes and comments; db/<dialect>/insert-shape.ts), and this
 * reads them. Pure.
 *
 * Why so narrow: consecutive jobs of such statements with the same prefix (the text before
 * the row, byte for byte) may run as one multi-row INSERT only when doing so changes nothing
 * a job could see. A row of constants (literals, NULL, TRUE/FALSE, DEFAULT, a sign, a
 * placeholder the dialect binds positionally) reads nothing: a function (NOW() in MySQL is
 * the statement's start, LAST_INSERT_ID(), currval(), lastval()), a subquery (it reads the
 * snapshot of the statement, not after the previous job's row) or a column name could give
 * a different value in one statement than in several. Anything after the row (ON DUPLICATE
 * KEY UPDATE, ON CONFLICT, RETURNING) and anything before the table but INTO (IGNORE,
 * OR REPLACE, LOW_PRIORITY, a WITH) is refused: its per-job figures, or its meaning when two
 * jobs hit one key, may differ (docs/guarantees.md, "Coalesced INSERTs").
 */

export interface ShapeToken {
  /**
   * `word`: an identifier or keyword; `number`: a numeric literal; `ident`: a quoted
   * identifier; `string`: a string literal (with its prefix: E'…', X'…'); `placeholder`: a
   * positional `?`; `named`: a named or numbered placeholder (`:a`, `?1`, `$a`); `cast`: `::`;
   * `punct`: any other character of code (`(`, `)`, `,`, `.`, `-`, `;`, …).
   */
  readonly kind: 'word' | 'number' | 'ident' | 'string' | 'placeholder' | 'named' | 'cast' | 'punct';
  readonly start: number;
  readonly end: number;
}

/** A single-row INSERT split around its row. */
export interface InsertShape {
  /** The text before the row's `(`: the same for every job that may share the statement. */
  readonly prefix: string;
  /** The row, `(` to `)` included. */
  readonly row: string;
  /** Positional placeholders in the row (each binds the next param). */
  readonly placeholders: number;
}

export interface ShapeRules {
  /** Keywords that open the rows: VALUES (and MySQL's VALUE). */
  readonly values: ReadonlySet<string>;
  /** A `::type` cast may follow a constant (PostgreSQL). */
  readonly casts: boolean;
}

/** Words a row may hold besides literals (case-insensitive). */
const CONSTANT_WORDS: ReadonlySet<string> = new Set(['NULL', 'TRUE', 'FALSE', 'DEFAULT']);

/** Cursor over a statement's tokens of code. */
class Reader {
  #at = 0;
  constructor(readonly sql: string, readonly tokens: readonly ShapeToken[]) {}

  get done(): boolean {
    return this.#at >= this.tokens.length;
  }

  peek(): ShapeToken | undefined {
    return this.tokens[this.#at];
  }

  next(): ShapeToken | undefined {
    return this.tokens[this.#at++];
  }

  text(t: ShapeToken): string {
    return this.sql.slice(t.start, t.end);
  }

  /** Takes the next token when it is the word `word` (any case). */
  word(word: string): boolean {
    const t = this.peek();
    if (t?.kind !== 'word' || this.text(t).toUpperCase() !== word) return false;
    this.#at++;
    return true;
  }

  /** Takes the next token when it is the punctuation `p`. */
  punct(p: string): boolean {
    const t = this.peek();
    if (t?.kind !== 'punct' || this.text(t) !== p) return false;
    this.#at++;
    return true;
  }

  /** Takes a name (a word that is not `values`' keyword, or a quoted identifier). */
  name(reserved: ReadonlySet<string>): boolean {
    const t = this.peek();
    if (t === undefined || !((t.kind === 'word' && !reserved.has(this.text(t).toUpperCase())) || t.kind === 'ident')) return false;
    this.#at++;
    return true;
  }
}

/** The name of the table (`a`, `a.b`, quoted parts). */
function readTable(r: Reader, reserved: ReadonlySet<string>): boolean {
  if (!r.name(reserved)) return false;
  while (r.punct('.')) if (!r.name(reserved)) return false;
  return true;
}

/** An optional column list `(a, b, …)`. */
function readColumns(r: Reader, reserved: ReadonlySet<string>): boolean {
  if (!r.punct('(')) return true;
  do if (!r.name(reserved)) return false;
  while (r.punct(','));
  return r.punct(')');
}

/** The row after its `(`, up to its `)`: constants only. Its placeholders' count and its `)`, or null. */
function readRow(r: Reader, rules: ShapeRules): { placeholders: number; close: ShapeToken } | null {
  let placeholders = 0;
  let items = 0;
  for (;;) {
    const t = r.next();
    if (t === undefined) return null;
    const text = r.text(t);
    if (t.kind === 'punct') {
      if (text === ')') return items > 0 ? { placeholders, close: t } : null;
      if (text !== ',' && text !== '-' && text !== '+') return null;
      continue;
    }
    if (t.kind === 'placeholder') placeholders++;
    else if (t.kind === 'word' && !CONSTANT_WORDS.has(text.toUpperCase())) return null;
    else if (t.kind !== 'word' && t.kind !== 'number' && t.kind !== 'string') return null;
    items++;
    if (rules.casts && r.peek()?.kind === 'cast') {
      r.next();
      if (r.next()?.kind !== 'word') return null;
    }
  }
}

/** The statement's shape when it is a single-row INSERT of constants, else null. */
export function insertShape(sql: string, tokens: readonly ShapeToken[] | null, rules: ShapeRules): InsertShape | null {
  if (tokens === null) return null;
  const r = new Reader(sql, tokens);
  if (!r.word('INSERT') || !r.word('INTO') || !readTable(r, rules.values) || !readColumns(r, rules.values)) return null;
  if (![...rules.values].some((v) => r.word(v))) return null;
  const open = r.peek();
  if (open === undefined || !r.punct('(')) return null;
  const row = readRow(r, rules);
  if (row === null) return null;
  // Nothing after the row but one `;`.
  r.punct(';');
  if (!r.done) return null;
  return { prefix: sql.slice(0, open.start), row: sql.slice(open.start, row.close.end), placeholders: row.placeholders };
}
