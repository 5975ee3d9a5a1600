import { QueryBatchError } from '../../errors.js';
import type { ScriptStatement, ScriptSplitter as Splitter } from '../driver.js';
import { lexOne } from './lexer.js';

/**
 * Splits a PostgreSQL script (a migration, a pg_dump in plain format without COPY … FROM
 * stdin) into statements, client-side, the way psql does: `;` ends a statement outside
 * quotes ('…', E'…', "…", $tag$…$tag$) and comments (`--`, nested `/* *\/`), and inside a
 * BEGIN ATOMIC … END body of a CREATE [OR REPLACE] FUNCTION|PROCEDURE (psql's heuristic). Comments before a statement are dropped; a statement's own are kept.
 *
 * psql meta-commands (`\connect`, `\i`, `\set`, …) are psql's, not SQL: a script runs on one
 * connection of its datasource, so a backslash line where a statement would start is
 * refused (thrown, with its line), rather than skipped: skipping `\connect other` would
 * run the rest of the script in the wrong database.
 *
 * Incremental: push() takes the text a piece at a time. Pure.
 */
export class PostgresScriptSplitter implements Splitter {
  /** The text from the current statement's start (or from where scanning resumes, before one starts). */
  #pending = '';
  /** Where scanning resumes in #pending. */
  #at = 0;
  /** Where the current statement's code starts in #pending; -1 before its first code. */
  #start = -1;
  #startLine = 0;
  /** Line of the character at #at. */
  #line = 1;
  #index = 0;
  /** psql's begin_depth, paren_depth and first words, for a CREATE [OR REPLACE] FUNCTION|PROCEDURE … BEGIN ATOMIC body. */
  #depth = 0;
  #parens = 0;
  #first: string[] = [];

  push(text: string): ScriptStatement[] {
    this.#pending += text;
    return this.#scan(false);
  }

  end(): ScriptStatement[] {
    const out = this.#scan(true);
    this.#finish(out, this.#pending.length);
    this.#pending = '';
    this.#at = 0;
    return out;
  }

  #scan(final: boolean): ScriptStatement[] {
    const out: ScriptStatement[] = [];
    const text = this.#pending;
    while (this.#at < text.length) {
      const token = lexOne(text, this.#at, final);
      if (token === null) break;
      const code = token.kind !== 'space' && token.kind !== 'comment';
      if (token.kind === 'semicolon' && this.#depth === 0) {
        this.#finish(out, token.start);
      } else if (code && this.#start < 0) {
        if (token.kind === 'meta') {
          const command = text.slice(token.start, token.end).trim();
          throw new QueryBatchError(
            'UNSUPPORTED_SCRIPT',
            `Expected SQL statements; found the psql meta-command ${JSON.stringify(command.slice(0, 60))} at line ${this.#line} (querybatch runs a script's statements on one connection of its datasource, without psql: remove the line)`,
          );
        }
        this.#start = token.start;
        this.#startLine = this.#line;
      }
      if (token.kind === 'word') this.#count(text.slice(token.start, token.end).toUpperCase());
      else if (token.kind === 'other' && text[token.start] === '(') this.#parens++;
      else if (token.kind === 'other' && text[token.start] === ')') this.#parens = Math.max(0, this.#parens - 1);
      for (let i = token.start; i < token.end; i++) if (text[i] === '\n') this.#line++;
      this.#at = token.end;
    }
    // Keep only the current statement's text (or nothing, before it starts).
    const keep = this.#start < 0 ? this.#at : this.#start;
    this.#pending = text.slice(keep);
    this.#at -= keep;
    if (this.#start >= 0) this.#start -= keep;
    return out;
  }

  /** psql's heuristic (psqlscan.l): BEGIN … END nests only in CREATE [OR REPLACE] FUNCTION|PROCEDURE, outside parentheses; CASE only inside a BEGIN. */
  #count(word: string): void {
    if (this.#first.length < 4) this.#first.push(word);
    const [a, b, c, d] = this.#first;
    const routine = (w: string | undefined) => w === 'FUNCTION' || w === 'PROCEDURE';
    if (a !== 'CREATE' || !(routine(b) || (b === 'OR' && c === 'REPLACE' && routine(d))) || this.#parens > 0) return;
    if (word === 'BEGIN') this.#depth++;
    else if (word === 'CASE' && this.#depth > 0) this.#depth++;
    else if (word === 'END' && this.#depth > 0) this.#depth--;
  }

  /** Emits the current statement (its code up to `end`), if it has any. */
  #finish(out: ScriptStatement[], end: number): void {
    if (this.#start >= 0) {
      const sql = this.#pending.slice(this.#start, end).trim();
      if (sql !== '') out.push({ sql, index: ++this.#index, line: this.#startLine });
    }
    this.#start = -1;
    this.#depth = 0;
    this.#parens = 0;
    this.#first = [];
  }
}

/** Splits a whole script (tests, small scripts): push() and end() in one. */
export function splitScript(text: string): ScriptStatement[] {
  const splitter = new PostgresScriptSplitter();
  return [...splitter.push(text), ...splitter.end()];
}
