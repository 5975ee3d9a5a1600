import type { ScriptStatement, ScriptSplitter as Splitter } from '../driver.js';

export type { ScriptStatement };

/**
 * Splits a MySQL/MariaDB SQL script (a dump, a migration) into its statements, client-side,
 * the way the `mariadb` client does: `;` ends a statement outside quotes ('…', "…",
 * backticks), comments (`-- `, `#`, `/* … *\/`) and versioned comments (`/*!NNNNN … *\/`,
 * `/*M!… *\/`, kept in the statement as they are: the server reads them); a `DELIMITER xx`
 * line changes the delimiter (triggers, procedures, functions) and is not a statement.
 *
 * Incremental: `push()` takes the text a piece at a time and returns the statements that
 * ended in it, so a script is never held whole in memory; `end()` returns the last one.
 * Pure: no I/O.
 */
type Mode =
  | 'code'
  /** In a quoted string or identifier; `quote` says which. */
  | 'quoted'
  | 'line-comment'
  | 'block-comment'
  /** In a versioned comment: code for the server, but no delimiter ends a statement inside it. */
  | 'versioned';

const DELIMITER_LINE = /^[ \t]*delimiter[ \t]+(\S+)[ \t]*\r?$/i;

/**
 * Runs of characters that mean nothing in a mode (sticky: matched at a position), taken in
 * one step instead of one character at a time: a dump's long INSERTs are mostly these.
 */
const PLAIN_IN_LINE_COMMENT = /[^\n]+/y;
const PLAIN_IN_BLOCK_COMMENT = /[^*]+/y;

/** Characters that mean nothing in code: all but quotes, comment starts, newlines and the delimiter's first character. */
function plainInCode(delimiter: string): RegExp {
  return new RegExp(`[^'"\`#\\-/\n${delimiter[0]!.replace(/[\\\]^-]/g, '\\$&')}]+`, 'y');
}

/** Characters that mean nothing in a quoted string or identifier: all but its quote (and a backslash, where it escapes). */
function plainInQuotes(quote: string, backslash: boolean): RegExp {
  return new RegExp(`[^${quote}${backslash && quote !== '`' ? '\\\\' : ''}]+`, 'y');
}

/** How many characters from `at` the sticky `plain` matches (0 if none). */
function plainRun(plain: RegExp, text: string, at: number): number {
  plain.lastIndex = at;
  return plain.test(text) ? plain.lastIndex - at : 0;
}

/** What a line read up to its end (not yet come) is while it may still be a DELIMITER line: the start of one (sticky, from lastIndex). */
const DELIMITER_LINE_START = /[ \t]*(?:d(?:e(?:l(?:i(?:m(?:i(?:t(?:e(?:r(?:[ \t]+\S*[ \t]*\r?)?)?)?)?)?)?)?)?)?)?$/iy;

export class ScriptSplitter implements Splitter {
  readonly #backslashEscapes: boolean;
  #delimiter = ';';
  #plainInCode = plainInCode(';');
  #mode: Mode = 'code';
  #quote = '';
  /** The plain runs in each kind of quotes, and the current one's. */
  readonly #plainInEachQuotes: Readonly<Record<string, RegExp>>;
  #plainInQuotes: RegExp;
  /** The text not yet settled into a statement (the current statement, or a partial line). */
  #pending = '';
  /** Where scanning resumes in #pending. */
  #at = 0;
  /** The current statement has begun (at its first character of code: comments before it are dropped). */
  #started = false;
  /** Its text in earlier pieces of the script; the rest is #pending from #from to #at (sliced once, not taken a character at a time). */
  #statement = '';
  #from = 0;
  #statementLine = 0;
  /** Line of the character at #at. */
  #line = 1;
  #index = 0;
  /** At the start of a line (a DELIMITER line is recognised only there). */
  #lineStart = true;

  /** `backslashEscapes`: false under the NO_BACKSLASH_ESCAPES SQL mode. */
  constructor(backslashEscapes = true) {
    this.#backslashEscapes = backslashEscapes;
    this.#plainInEachQuotes = { "'": plainInQuotes("'", backslashEscapes), '"': plainInQuotes('"', backslashEscapes), '`': plainInQuotes('`', backslashEscapes) };
    this.#plainInQuotes = this.#plainInEachQuotes["'"]!;
  }

  /** Takes more of the script; returns the statements it completed. */
  push(text: string): ScriptStatement[] {
    this.#pending += text;
    const out: ScriptStatement[] = [];
    this.#scan(out, false);
    if (this.#started) this.#statement += this.#pending.slice(this.#from, this.#at);
    this.#from = 0;
    this.#pending = this.#pending.slice(this.#at);
    this.#at = 0;
    return out;
  }

  /** The end of the script: returns its last statement, if it had no delimiter after it. */
  end(): ScriptStatement[] {
    const out: ScriptStatement[] = [];
    this.#scan(out, true);
    this.#finish(out);
    this.#pending = '';
    this.#at = 0;
    return out;
  }

  /** Scans #pending from #at; stops where more text is needed to decide (unless `final`). */
  #scan(out: ScriptStatement[], final: boolean): void {
    const text = this.#pending;
    while (this.#at < text.length) {
      if (this.#lineStart && this.#mode === 'code' && !this.#started) {
        const end = text.indexOf('\n', this.#at);
        if (end < 0 && !final) {
          // The whole line is needed to tell a DELIMITER line: waited for only while the line may be one
          // (a statement of megabytes on one line is not read again at each push).
          DELIMITER_LINE_START.lastIndex = this.#at;
          if (DELIMITER_LINE_START.test(text)) return;
        } else {
          const delimiter = DELIMITER_LINE.exec(text.slice(this.#at, end < 0 ? text.length : end));
          if (delimiter) {
            this.#delimiter = delimiter[1]!;
            this.#plainInCode = plainInCode(this.#delimiter);
            this.#advance(end < 0 ? text.length : end + 1, text);
            continue;
          }
        }
      }
      this.#lineStart = false;
      const before = this.#mode;
      const step = this.#step(text, final);
      if (step === 0) return; // needs more text
      if (step < 0) {
        // The delimiter: a statement ends here.
        this.#finish(out);
        this.#advance(this.#at + this.#delimiter.length, text);
        continue;
      }
      const opensComment = before === 'code' && (this.#mode === 'line-comment' || this.#mode === 'block-comment');
      if (!this.#started) this.#begin(text, step, before !== 'line-comment' && before !== 'block-comment' && !opensComment);
      this.#advance(this.#at + step, text);
    }
  }

  /**
   * How many characters at #at belong to the statement as they are; -1 at a delimiter; 0
   * when the next characters can't be read until more text comes.
   */
  #step(text: string, final: boolean): number {
    const c = text[this.#at]!;
    const rest = text.length - this.#at;
    switch (this.#mode) {
      case 'quoted':
        if (c === '\\' && this.#backslashEscapes && this.#quote !== '`') return rest >= 2 || final ? Math.min(2, rest) : 0;
        if (c === this.#quote) {
          if (rest < 2 && !final) return 0;
          if (text[this.#at + 1] === this.#quote) return 2;
          this.#mode = 'code';
          return 1;
        }
        return Math.max(1, plainRun(this.#plainInQuotes, text, this.#at));
      case 'line-comment':
        if (c === '\n') {
          this.#mode = 'code';
          return 1;
        }
        return plainRun(PLAIN_IN_LINE_COMMENT, text, this.#at);
      case 'block-comment':
      case 'versioned':
        if (c === '*') {
          if (rest < 2 && !final) return 0;
          if (text[this.#at + 1] === '/') {
            this.#mode = 'code';
            return 2;
          }
          return 1;
        }
        return plainRun(PLAIN_IN_BLOCK_COMMENT, text, this.#at);
      case 'code':
        return this.#codeStep(text, final);
    }
  }

  #codeStep(text: string, final: boolean): number {
    const c = text[this.#at]!;
    const rest = text.length - this.#at;
    if (text.startsWith(this.#delimiter, this.#at)) return -1;
    if (rest < this.#delimiter.length && !final && this.#delimiter.startsWith(text.slice(this.#at))) return 0;
    if (c === "'" || c === '"' || c === '`') {
      this.#mode = 'quoted';
      this.#quote = c;
      this.#plainInQuotes = this.#plainInEachQuotes[c]!;
      return 1;
    }
    if (c === '#') {
      this.#mode = 'line-comment';
      return 1;
    }
    if (c === '-' || c === '/') {
      if (rest < (c === '/' ? 4 : 3) && !final) return 0; // `-- `, `/*!`, `/*M!`
      const next = text[this.#at + 1];
      // eslint-disable-next-line no-control-regex -- `--` starts a comment before white space or a control character, as the server reads it
      if (c === '-' && next === '-' && (rest < 3 || /[\s\x00-\x1f]/.test(text[this.#at + 2]!))) {
        this.#mode = 'line-comment';
        return 2;
      }
      if (c === '/' && next === '*') {
        this.#mode = text[this.#at + 2] === '!' || text.startsWith('M!', this.#at + 2) ? 'versioned' : 'block-comment';
        return 2;
      }
    }
    return Math.max(1, plainRun(this.#plainInCode, text, this.#at));
  }

  /** Begins the statement at the `length` characters at #at, if they are code (or a quoted string), not a comment nor white space. */
  #begin(text: string, length: number, code: boolean): void {
    if (!code || text.slice(this.#at, this.#at + length).trim() === '') return; // white space and comments before a statement are dropped
    this.#started = true;
    this.#statementLine = this.#line;
    this.#from = this.#at;
  }

  /** Moves #at to `to`, counting lines; a line starts after a newline. */
  #advance(to: number, text: string): void {
    for (let i = this.#at; i < to; i++) if (text[i] === '\n') this.#line++;
    if (to > this.#at && text[to - 1] === '\n') this.#lineStart = true;
    this.#at = to;
  }

  /** Emits the current statement, if it has any code. */
  #finish(out: ScriptStatement[]): void {
    const sql = this.#started ? (this.#statement + this.#pending.slice(this.#from, this.#at)).trim() : '';
    this.#started = false;
    this.#statement = '';
    this.#mode = 'code';
    if (sql !== '') out.push({ sql, index: ++this.#index, line: this.#statementLine });
  }
}

/** Splits a whole script (for tests and small scripts): push() and end() in one. */
export function splitScript(text: string, backslashEscapes = true): ScriptStatement[] {
  const splitter = new ScriptSplitter(backslashEscapes);
  return [...splitter.push(text), ...splitter.end()];
}
