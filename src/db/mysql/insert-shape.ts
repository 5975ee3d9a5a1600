import { byText } from '../by-text.js';
import { insertShape, type InsertShape } from '../insert-shape.js';
import { lexShape, type LexRules } from '../shape-lexer.js';

/**
 * A MySQL/MariaDB single-row `INSERT INTO t [(cols)] VALUE[S] (constants)` split around its
 * row (db/insert-shape.ts), read as the server reads it (statement.ts): '…' strings,
 * backslash escapes unless NO_BACKSLASH_ESCAPES, `#` and `-- ` comments. A "…" is read as an
 * identifier (under ANSI_QUOTES it names a column), so a row holding one is never merged.
 * Pure.
 */

const rules = (backslashEscapes: boolean): LexRules => ({
  quotes: { "'": { kind: 'string', close: "'" }, '"': { kind: 'ident', close: '"' }, '`': { kind: 'ident', close: '`' } },
  backslashEscapes,
  hashComments: true,
  dashDashNeedsSpace: true,
  stringPrefixes: new Set(['X', 'B', 'N']),
  namedMarks: '@',
});

const WITH_ESCAPES = rules(true);
const WITHOUT_ESCAPES = rules(false);
const VALUES = { values: new Set(['VALUES', 'VALUE']), casts: false };

const withEscapes = byText((sql) => insertShape(sql, lexShape(sql, WITH_ESCAPES), VALUES));
const withoutEscapes = byText((sql) => insertShape(sql, lexShape(sql, WITHOUT_ESCAPES), VALUES));

/** Remembered per text (by-text.ts): a drain reads the same template again and again. */
export function mysqlInsertShape(sql: string, backslashEscapes = true): InsertShape | null {
  return backslashEscapes ? withEscapes(sql) : withoutEscapes(sql);
}
