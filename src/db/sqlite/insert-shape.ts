import { byText } from '../by-text.js';
import { insertShape, type InsertShape } from '../insert-shape.js';
import { lexShape, type LexRules } from '../shape-lexer.js';

/**
 * A SQLite single-row `INSERT INTO t [(cols)] VALUES (constants)` split around its row
 * (db/insert-shape.ts): '…' strings and X'…' blobs, "…", `…` and […] identifiers (SQLite
 * reads a "…" naming no column as a string: as an identifier here, never merged), `--` and
 * `/* *\/` comments; `?` binds the next param, `?NNN`, `:a`, `@a` and `$a` are named (a
 * row with one is never merged: the params of several jobs can't be told apart). Pure.
 */

const RULES: LexRules = {
  quotes: { "'": { kind: 'string', close: "'" }, '"': { kind: 'ident', close: '"' }, '`': { kind: 'ident', close: '`' }, '[': { kind: 'ident', close: ']' } },
  backslashEscapes: false,
  hashComments: false,
  dashDashNeedsSpace: false,
  stringPrefixes: new Set(['X']),
  namedMarks: ':@$',
};

const VALUES = { values: new Set(['VALUES']), casts: false };

/** Remembered per text (by-text.ts): a drain reads the same template again and again. */
export const sqliteInsertShape: (sql: string) => InsertShape | null = byText((sql) => insertShape(sql, lexShape(sql, RULES), VALUES));
