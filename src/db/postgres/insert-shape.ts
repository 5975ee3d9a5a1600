import { byText } from '../by-text.js';
import { insertShape, type InsertShape, type ShapeToken } from '../insert-shape.js';
import { tokenize } from './lexer.js';

/**
 * A PostgreSQL single-row `INSERT INTO t [(cols)] VALUES (constants)` split around its row
 * (db/insert-shape.ts), read with the dialect's lexer (lexer.ts): '…', E'…' and $$…$$ are
 * strings, "…" an identifier, `::type` a cast a constant may carry; a psql meta-command is
 * never merged. Pure.
 */

function shapeTokens(sql: string): ShapeToken[] | null {
  const out: ShapeToken[] = [];
  for (const t of tokenize(sql)) {
    const first = sql[t.start]!;
    switch (t.kind) {
      case 'space':
      case 'comment':
        break;
      case 'meta':
        return null;
      case 'word':
        out.push({ ...t, kind: /[0-9]/.test(first) ? 'number' : first === '$' ? 'named' : 'word' });
        break;
      case 'quoted':
        out.push({ ...t, kind: first === '"' || (/[Uu]/.test(first) && sql[t.start + 2] === '"') ? 'ident' : 'string' });
        break;
      case 'qmark':
        out.push({ ...t, kind: 'placeholder' });
        break;
      case 'named':
        out.push({ ...t, kind: 'named' });
        break;
      case 'colons':
        out.push({ ...t, kind: sql.slice(t.start, t.end) === '::' ? 'cast' : 'punct' });
        break;
      default:
        out.push({ ...t, kind: 'punct' });
    }
  }
  return out;
}

const VALUES = { values: new Set(['VALUES']), casts: true };

/** Remembered per text (by-text.ts): a drain reads the same template again and again. */
export const postgresInsertShape: (sql: string) => InsertShape | null = byText((sql) => insertShape(sql, shapeTokens(sql), VALUES));
