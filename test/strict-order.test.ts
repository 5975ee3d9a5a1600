import { afterEach, describe, expect, it } from 'vitest';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch, type StatusReport } from '../src/index.js';
import { count, failedNames, removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';

/**
 * datasources.<name>.strictOrder against MariaDB: the cascade. A parent row's INSERT
 * is refused; the child rows that need it (a foreign key) stay pending instead of going to
 * failed/ one by one, until the cause is fixed and the parent respooled.
 */

const t = useTestDatabase(
  'strict_order',
  'CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE) ENGINE=InnoDB',
  'CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL, seq INT NOT NULL, FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB',
);
let home: string;

afterEach(async () => {
  await removeHome(home);
});

describe('strictOrder', () => {
  it('a refused parent INSERT blocks its 200 dependent child INSERTs; status says by which file; fixed and respooled, parent then children commit in order', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: { url: t.url, strictOrder: true } }, durability: 'none' }));
    // The cause: a row already holds the parent's unique name (a duplicate key).
    await t.db.query("INSERT INTO parent (id, name) VALUES (99, 'acme')");
    const qb = new QueryBatch({ home });
    try {
      const parentId = await qb.spool("INSERT INTO parent (id, name) VALUES (1, 'acme')");
      for (let seq = 1; seq <= 200; seq++) await qb.spool('INSERT INTO child (parent_id, seq) VALUES (1, ?)', [seq]);
      const blocked = `failed-${parentId}.batchsql`;

      const first = await qb.run();
      expect(first).toMatchObject({ success: 0, sqlFailed: 1, deferred: 200 });
      expect(first.datasources.main?.blocked).toBe(blocked);
      expect(await failedNames(home)).toEqual([blocked]);
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM child')).toBe(0);

      const status = await qb.status();
      expect(status.blocked).toEqual({ main: blocked });
      expect(status.pending.main?.count).toBe(200);
      const json = await runCli(['--home', home, 'status', '--json']);
      expect(json.code).toBe(0);
      expect((JSON.parse(json.stdout) as StatusReport).blocked).toEqual({ main: blocked });
      const text = await runCli(['--home', home, 'status']);
      expect(text.stdout).toContain(`main: 200 (oldest `);
      expect(text.stdout).toContain(`, blocked by failed/${blocked} (strictOrder): respool or delete it to go on`);

      // Still blocked: the next run drains nothing.
      const second = await qb.run();
      expect(second).toMatchObject({ success: 0, sqlFailed: 0, deferred: 200 });
      expect(second.datasources.main?.blocked).toBe(blocked);

      // Fix the cause, respool the parent: it keeps its place at the head.
      await t.db.query("UPDATE parent SET name = 'acme-old' WHERE id = 99");
      const respooled = await qb.respool({ names: [blocked] });
      expect(respooled.respooled).toEqual([{ name: blocked, id: parentId, datasource: 'main' }]);
      const third = await qb.run();
      expect(third).toMatchObject({ success: 201, sqlFailed: 0, deferred: 0 });
      expect(third.datasources.main?.blocked).toBeUndefined();
      expect(await failedNames(home)).toEqual([]);
      const [rows] = await t.db.query('SELECT seq FROM child ORDER BY id');
      expect((rows as { seq: number }[]).map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, k) => k + 1));
      expect((await qb.status()).blocked).toEqual({ main: null });
    } finally {
      await qb.close();
    }
  });

  it('a statement stopped for its time limit blocks too; another datasource drains on', async () => {
    home = await tempHome();
    const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, strictOrder: true }, other: t.url }, durability: 'none' });
    try {
      const slow = await qb.spool('SELECT SLEEP(30)', [], { timeoutMs: 500 });
      await qb.spool('INSERT INTO child (parent_id, seq) VALUES (99, 10)');
      await qb.spool('INSERT INTO child (parent_id, seq) VALUES (99, 11)', [], { datasource: 'other' });
      const summary = await qb.run();
      expect(summary.datasources.main).toMatchObject({ success: 0, sqlFailed: 1, deferred: 1, blocked: `failed-${slow}.batchsql` });
      expect(summary.datasources.other).toMatchObject({ success: 1, deferred: 0 });
      expect(summary.datasources.other?.blocked).toBeUndefined();
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM child WHERE parent_id = 99 AND seq = 10')).toBe(0);
      expect((await qb.status()).blocked).toEqual({ main: `failed-${slow}.batchsql` });
    } finally {
      await qb.close();
    }
  });

  it('deleting the blocking file lets the drain go on', async () => {
    home = await tempHome();
    await t.db.query('DELETE FROM child');
    const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, strictOrder: true } }, durability: 'none' });
    try {
      const refused = await qb.spool('INSERT INTO no_such_table (n) VALUES (1)');
      await qb.spool('INSERT INTO child (parent_id, seq) VALUES (99, 1)');
      await qb.spool('INSERT INTO child (parent_id, seq) VALUES (99, 2)');
      const first = await qb.run();
      expect(first.datasources.main).toMatchObject({ success: 0, sqlFailed: 1, deferred: 2, blocked: `failed-${refused}.batchsql` });
      await rm(join(home, 'failed', `failed-${refused}.batchsql`), { force: true });
      const second = await qb.run();
      expect(second.datasources.main).toMatchObject({ success: 2, deferred: 0 });
      expect(second.datasources.main?.blocked).toBeUndefined();
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM child WHERE parent_id = 99')).toBe(2);
    } finally {
      await qb.close();
    }
  });
});
