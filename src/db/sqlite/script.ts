import type { ScriptStatement, ScriptSplitter } from '../driver.js';

/**
 * Splits a SQLite script into its statements, as the sqlite3 shell does: `;` ends a statement
 * outside '…' strings, "…", `…` and […] identifiers, `--` and `/* … *\/` comments, and the
 * BEGIN … END body of a CREATE TRIGGER (whose statements end with `;` too; a CASE … END inside
 * the body is counted, so its END does not end the body).
 *
 * Incremental: push() takes the text a piece at a time and returns the statements that ended
 * in it; end() the last one. It also keeps each statement's first words (upper-cased, code
 * only), which statement.ts reads. Pure.
 */

type Mode = 'code' | 'quoted' | 'line-comment' | 'block-comment';

/** Words of a statement kept for statement.ts (enough for CREATE TEMP TRIGGER IF NOT EXISTS …). */
const KEPT_WORDS = 8;

export interface SplitStatement extends ScriptStatement {
  /** Its first words of code, upper-cased. */
  readonly words: readonly string[];
}

const WORD_START = /[A-Za-z_]/;
const WORD_PART = /[A-Za-z0-9_$]/;

export class SqliteScriptSplitter implements ScriptSplitter {
  #mode: Mode = 'code';
  /** The closing character of the quote we are in. */
  #close = '';
  #pending = '';
  #at = 0;
  #statement = '';
  #statementLine = 0;
  #line = 1;
  #index = 0;
  #words: string[] = [];
  /** In a CREATE TRIGGER: before its body (false), in its body (true); null in any other statement. */
  #trigger: boolean | null = null;
  #caseDepth = 0;

  push(text: string): SplitStatement[] {
    this.#pending += text;
    const out: SplitStatement[] = [];
    this.#scan(out, false);
    this.#pending = this.#pending.slice(this.#at);
    this.#at = 0;
    return out;
  }

  end(): SplitStatement[] {
    const out: SplitStatement[] = [];
    this.#scan(out, true);
    this.#pending = '';
    this.#at = 0;
    this.#finish(out);
    return out;
  }

  #scan(out: SplitStatement[], final: boolean): void {
    const text = this.#pending;
    while (this.#at < text.length) {
      const step = this.#step(text, final);
      if (step === 0) return; // more text is needed to decide
      if (step < 0) {
        this.#finish(out);
        this.#advance(this.#at + 1, text);
        continue;
      }
      this.#advance(this.#at + step, text);
    }
  }

  /** Characters at #at that go into the statement; -1 at a `;` that ends it; 0 when more text is needed. */
  #step(text: string, final: boolean): number {
    const c = text[this.#at]!;
    const rest = text.length - this.#at;
    switch (this.#mode) {
      case 'quoted':
        if (c === this.#close) {
          if (this.#close !== ']') {
            if (rest < 2 && !final) return 0;
            if (text[this.#at + 1] === this.#close) return this.#take(text, 2);
          }
          this.#mode = 'code';
        }
        return this.#take(text, 1);
      case 'line-comment':
        if (c === '\n') this.#mode = 'code';
        return this.#skip(1);
      case 'block-comment':
        if (c === '*') {
          if (rest < 2 && !final) return 0;
          if (text[this.#at + 1] === '/') {
            this.#mode = 'code';
            return this.#skip(2);
          }
        }
        return this.#skip(1);
      case 'code':
        return this.#codeStep(text, final);
    }
  }

  #codeStep(text: string, final: boolean): number {
    const c = text[this.#at]!;
    const rest = text.length - this.#at;
    if (c === ';') {
      if (this.#trigger !== true) return -1;
      return this.#take(text, 1);
    }
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      this.#mode = 'quoted';
      this.#close = c === '[' ? ']' : c;
      return this.#take(text, 1);
    }
    if (c === '-' || c === '/') {
      if (rest < 2 && !final) return 0;
      const next = text[this.#at + 1];
      if (c === '-' && next === '-') {
        this.#mode = 'line-comment';
        return this.#skip(2);
      }
      if (c === '/' && next === '*') {
        this.#mode = 'block-comment';
        return this.#skip(2);
      }
    }
    if (WORD_START.test(c)) {
      let j = this.#at + 1;
      while (j < text.length && WORD_PART.test(text[j]!)) j++;
      if (j === text.length && !final) return 0;
      this.#word(text.slice(this.#at, j).toUpperCase());
      return this.#take(text, j - this.#at);
    }
    return this.#take(text, 1);
  }

  /** A word of code: kept if among the first, and followed through a trigger's body. */
  #word(word: string): void {
    if (this.#words.length < KEPT_WORDS) {
      this.#words.push(word);
      const w = this.#words;
      if (w[0] === 'CREATE' && (w[1] === 'TRIGGER' || ((w[1] === 'TEMP' || w[1] === 'TEMPORARY') && w[2] === 'TRIGGER'))) this.#trigger ??= false;
    }
    if (this.#trigger === false && word === 'BEGIN') {
      this.#trigger = true;
      this.#caseDepth = 0;
    } else if (this.#trigger === true) {
      if (word === 'CASE') this.#caseDepth++;
      else if (word === 'END') {
        if (this.#caseDepth > 0) this.#caseDepth--;
        else this.#trigger = null; // the body ended: the next `;` ends the statement
      }
    }
  }

  /** Adds `n` characters at #at to the statement (white space before it dropped). */
  #take(text: string, n: number): number {
    const chunk = text.slice(this.#at, this.#at + n);
    if (this.#statement === '') {
      if (chunk.trim() === '') return n;
      this.#statementLine = this.#line;
    }
    this.#statement += chunk;
    return n;
  }

  /** `n` characters of a comment: dropped before the statement's code starts, kept as they are after. */
  #skip(n: number): number {
    if (this.#statement !== '') this.#statement += this.#pending.slice(this.#at, this.#at + n);
    return n;
  }

  #advance(to: number, text: string): void {
    for (let i = this.#at; i < to; i++) if (text[i] === '\n') this.#line++;
    this.#at = to;
  }

  #finish(out: SplitStatement[]): void {
    const sql = this.#statement.trim();
    const words = this.#words;
    this.#statement = '';
    this.#words = [];
    this.#trigger = null;
    this.#caseDepth = 0;
    this.#mode = 'code';
    if (sql !== '') out.push({ sql, index: ++this.#index, line: this.#statementLine, words });
  }
}

/** Splits a whole script (tests, statement.ts): push() and end() in one. */
export function splitScript(text: string): SplitStatement[] {
  const splitter = new SqliteScriptSplitter();
  return [...splitter.push(text), ...splitter.end()];
}
