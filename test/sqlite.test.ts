import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { removeHome, tempHome } from './helpers.js';

let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  if (home) await removeHome(home);
});

function open(url = 'sqlite:q.db', extra: Record<string, unknown> = {}): QueryBatch {
  return new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url, ...extra } } } as never);
}

function db(file = 'q.db'): Database.Database {
  return new Database(join(home, file));
}

describe('sqlite driver', () => {
  it('smoke', async () => {
    home = await tempHome();
    q = open();
    await q.spool('CREATE TABLE t (a INTEGER, b TEXT)');
    await q.spool('INSERT INTO t VALUES (?, ?)', [1, 'x']);
    const s = await q.run();
    expect(s).toMatchObject({ success: 2, sqlFailed: 0, connectionFailed: 0 });
    const d = db();
    expect(d.prepare('SELECT * FROM t').all()).toEqual([{ a: 1, b: 'x' }]);
    d.close();
  });
});
