import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { findDriverFactory } from '../../src/db/registry.js';
import { bulkInserts, paramsFor, timed, timedClient } from '../common.js';
import type { DrainTarget } from './target.js';

/**
 * SQLite through better-sqlite3: a database file in the scratch directory, with the library's
 * defaults on both sides (rollback journal, synchronous FULL), as querybatch's driver leaves them.
 */
export function sqliteTarget(dir: string): DrainTarget {
  const path = join(dir, 'bench-sqlite.db');
  const url = `sqlite://${path}`; // sqlite:///absolute/path.db
  const open = (): Database.Database => {
    mkdirSync(dir, { recursive: true });
    return new Database(path, { timeout: 5_000 });
  };
  const withDb = <T>(fn: (db: Database.Database) => T): Promise<T> => {
    const db = open();
    try {
      return Promise.resolve(fn(db));
    } finally {
      db.close();
    }
  };
  return {
    name: 'SQLite',
    url,
    perStatementLabel: 'better-sqlite3 loop, one statement per transaction (autocommit)',
    oneTransactionLabel: 'better-sqlite3 loop, one transaction for all',
    unavailable: findDriverFactory(url) === undefined ? 'no driver is registered for sqlite: in this build (the SQLite driver is on branch sqlitedriver)' : null,
    prepare: () => withDb(() => undefined),
    resetTable: (table) => withDb((db) => {
      db.exec(`DROP TABLE IF EXISTS "${table}"`);
      db.exec(`CREATE TABLE "${table}" (id INTEGER PRIMARY KEY AUTOINCREMENT, a INT NOT NULL, b VARCHAR(64) NOT NULL)`);
    }),
    dropTable: (table) => withDb((db) => {
      db.exec(`DROP TABLE IF EXISTS "${table}"`);
    }),
    rowCount: (table) => withDb((db) => Number((db.prepare(`SELECT COUNT(*) AS n FROM "${table}"`).get() as { n: number }).n)),
    insertSql: (table) => `INSERT INTO "${table}" (a, b) VALUES (?, ?)`,
    async rawLoop(table, n, oneTransaction) {
      const db = open();
      try {
        const insert = db.prepare(`INSERT INTO "${table}" (a, b) VALUES (?, ?)`);
        const loop = (): void => {
          for (let i = 0; i < n; i++) insert.run(paramsFor(i));
        };
        // Synchronous: the loop holds the event loop, as a raw better-sqlite3 caller would.
        return await timed(() => Promise.resolve(oneTransaction ? db.transaction(loop)() : loop()));
      } finally {
        db.close();
      }
    },
    bulkLabel: 'sqlite3 CLI, multi-row INSERTs of 1,000 rows, one transaction',
    bulkLoad: (table, n, scratch) => timedClient('sqlite3', [path], scratch, bulkInserts(`"${table}"`, n, 1000, 'BEGIN')),
    describe: () => withDb((db) => ({
      sqlite: (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v,
      sqliteJournalMode: db.pragma('journal_mode', { simple: true }),
      sqliteSynchronous: db.pragma('synchronous', { simple: true }),
    })),
  };
}
