import { byText } from '../by-text.js';
import type { ScriptRole, StatementTraits } from '../driver.js';
import { splitScript } from './script.js';

/**
 * What a SQLite statement is, from its text alone. Pure.
 *
 * SQLite's DDL is transactional: CREATE, DROP and ALTER run inside the ledger's transaction
 * and commit (or roll back) with it, so they run exactly once like DML. Outside it: VACUUM
 * (refused inside a transaction), ATTACH and DETACH (the same), PRAGMA (some refuse a
 * transaction, and most set the session), and transaction control (BEGIN, COMMIT, END,
 * ROLLBACK, SAVEPOINT, RELEASE). State a statement can leave in the session: PRAGMAs,
 * ATTACHed databases, TEMP tables, views and triggers.
 */

const CONTROL: ReadonlySet<string> = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']);

/** Statements that can share the ledger's transaction. */
const TRANSACTIONAL: ReadonlySet<string> = new Set([
  'INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'SELECT', 'WITH', 'VALUES', 'CREATE', 'DROP', 'ALTER', 'REINDEX', 'ANALYZE', 'EXPLAIN',
]);

/** What the text holds: its statements' first words. */
function statementsOf(sql: string): (readonly string[])[] {
  return splitScript(sql).map((s) => s.words);
}

/** CREATE TEMP/TEMPORARY TABLE/VIEW/TRIGGER (or DROP of one named temp.…: DROP has no TEMP keyword, see changesSession). */
function isTemp(words: readonly string[]): boolean {
  return words[0] === 'CREATE' && (words[1] === 'TEMP' || words[1] === 'TEMPORARY');
}

export const inspect = byText(readTraits);

function readTraits(sql: string): StatementTraits {
  const statements = statementsOf(sql);
  const words = statements[0] ?? [];
  const keyword = words[0] ?? '';
  const multiple = statements.length > 1;
  const transactional = !multiple && TRANSACTIONAL.has(keyword);
  // Data statements and DDL on a database file leave nothing in the session, nor does VACUUM;
  // PRAGMA, ATTACH, DETACH, transaction control, TEMP objects and anything unknown may.
  const changesSession = multiple || isTemp(words) || (!TRANSACTIONAL.has(keyword) && keyword !== 'VACUUM');
  return { keyword, transactional, changesSession };
}

/** A script's statement: PRAGMA, ATTACH, DETACH and CREATE TEMP … set the session (run again before a resumed script); transaction control; DDL and DML transactional; VACUUM and the unknown other. */
export function scriptRole(sql: string): ScriptRole {
  const words = statementsOf(sql)[0] ?? [];
  const keyword = words[0] ?? '';
  if (keyword === 'PRAGMA' || keyword === 'ATTACH' || keyword === 'DETACH' || isTemp(words)) return 'session';
  if (CONTROL.has(keyword)) return 'control';
  return TRANSACTIONAL.has(keyword) ? 'transactional' : 'other';
}
