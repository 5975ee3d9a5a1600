import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../src/index.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { count, cuttingProxy, filesBelow, removeHome, sessionRunning, startRunner, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('ledger');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
});

/** A claim of a dead runner of this host (a pid that is not running). */
async function claimByDeadRunner(id: string, ds = 'main'): Promise<string> {
  const dir = join(home, 'spool', '.active', `${hostname()}.999999.1700000000000`, ds);
  await mkdir(dir, { recursive: true });
  const claim = join(dir, `${id}.batchsql`);
  await rename(spoolPathFor(join(home, 'spool'), ds, id), claim);
  return claim;
}

describe('the ledger', () => {
  it('a claim of a job that committed before its runner was killed is settled: 0 rows added', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE settle2 (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('DO 0');
    const id = await q.spool('INSERT INTO settle2 (job) VALUES (?)', [7]);
    const after = await q.spool('INSERT INTO settle2 (job) VALUES (?)', [8]);
    expect(await q.run({ limit: 1 })).toMatchObject({ success: 1 }); // the ledger table now exists
    // What a crash between COMMIT and unlink leaves: the statement's effect, its ledger row, the claim.
    const spoolId = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    await t.db.query('START TRANSACTION');
    await t.db.query('INSERT INTO settle2 (job) VALUES (7)');
    await t.db.query('INSERT INTO querybatch_ledger (id, spool) VALUES (?, ?)', [id, spoolId]);
    await t.db.query('COMMIT');
    await claimByDeadRunner(id);

    const summary = await q.run();
    expect(summary).toMatchObject({ recovered: 1, settled: 1, success: 1, sqlFailed: 0 });
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    const [rows] = await t.db.query('SELECT job FROM settle2 ORDER BY n');
    expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual([7, 8]);
    expect(after).toBeTruthy();
    // Pruned at the end of the drain: no file of either job is left.
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE spool = ?', [spoolId])).toBe(0);
  });

  it('is created under its configured name; ledger: false creates none and runs statements plainly', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE named (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: { table: 'my_ledger' } }, plain: { url: t.url, ledger: false } } });
    await q.spool('INSERT INTO named (job) VALUES (?)', [1]);
    await q.spool('INSERT INTO named (job) VALUES (?)', [2], { datasource: 'plain' });
    expect(await q.run()).toMatchObject({ success: 2 });
    const [tables] = await t.db.query("SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '%ledger%' ORDER BY 1", [t.name]);
    expect((tables as Array<{ name: string }>).map((r) => r.name)).toContain('my_ledger');
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM named')).toBe(2);
  });

  it('a statement whose own error is a duplicate key goes to failed/, not settled, and leaves no ledger row', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE uniq (id INT PRIMARY KEY)');
    await t.db.query('INSERT INTO uniq VALUES (1)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const dup = await q.spool('INSERT INTO uniq VALUES (?)', [1]);
    const bad = await q.spool('INSERT INTO no_such_table VALUES (1)');
    await q.spool('INSERT INTO uniq VALUES (?)', [2]);
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 1, sqlFailed: 2, settled: 0 });
    expect((await readdir(join(home, 'failed'))).sort()).toEqual([`failed-${dup}.batchsql`, `failed-${bad}.batchsql`].sort());
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id IN (?, ?)', [dup, bad])).toBe(0);
    // A failed file respooled after the cause is fixed runs (its id was rolled back out of the ledger).
    await t.db.query('DELETE FROM uniq WHERE id = 1');
    await rename(join(home, 'failed', `failed-${dup}.batchsql`), join(home, 'spool', `failed-${dup}.batchsql`));
    q = (await q.close(), new QueryBatch({ home, configFile: false, datasources: { main: t.url }, dropInSettleMs: 0 }));
    expect(await q.run()).toMatchObject({ adopted: 1, success: 1, settled: 0 });
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM uniq')).toBe(2);
  });

  it('params inlined client-side in the one-round-trip path store the same values as prepared statements', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE vals (n INT AUTO_INCREMENT PRIMARY KEY, mode VARCHAR(10), s TEXT, d DATETIME(3), b BLOB, big BIGINT, f DOUBLE, z INT, flag BOOLEAN)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url, plain: { url: t.url, ledger: false } } });
    const values = ["it's \\ a \"test\"; DROP TABLE vals; -- ? ünïcødé 😀", new Date('2024-02-29T23:59:58.123Z'), Buffer.from([0, 1, 2, 39, 92, 255]), 9007199254740993n, 0.1, null, true];
    for (const ds of ['main', 'plain']) {
      await q.spool('INSERT INTO vals (mode, s, d, b, big, f, z, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?) -- a comment with a ? in it', [ds, ...values], { datasource: ds });
    }
    await q.spool('INSERT INTO vals (mode, s) VALUES (:mode, :s)', { mode: 'named', s: 'x?y' });
    expect(await q.run()).toMatchObject({ success: 3, sqlFailed: 0 });
    const [rows] = await t.db.query('SELECT mode, s, d, HEX(b) AS b, big, f, z, flag FROM vals ORDER BY n');
    // By mode: datasources drain side by side, so rows of main and plain may interleave.
    const byMode = new Map((rows as Array<Record<string, unknown>>).map((r) => [r.mode, r]));
    const [main, plain, named] = [byMode.get('main'), byMode.get('plain'), byMode.get('named')];
    expect({ ...main, mode: '' }).toEqual({ ...plain, mode: '' });
    expect(main!.s).toBe(values[0]);
    expect(main!.big).toBe('9007199254740993');
    expect(named).toMatchObject({ mode: 'named', s: 'x?y' });
  });
});

describe('pruning the ledger', () => {
  it('deletes rows older than the oldest file that may need one, keeps a failed/connection- file\'s row and newer', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE prune (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('DO 0');
    expect(await q.run()).toMatchObject({ success: 1 }); // the table exists, and is pruned empty
    const spoolId = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE spool = ?', [spoolId])).toBe(0);

    const { idAt } = await import('../src/spool/id.js');
    const old = idAt(Date.now() - 3_600_000); // a job long done, its file long gone
    const lost = idAt(Date.now() - 60_000); // COMMIT answered by a lost connection: its file in failed/connection-
    const otherSpool = idAt(Date.now() - 7_200_000); // another spool's row in the same table
    await t.db.query('INSERT INTO querybatch_ledger (id, spool) VALUES (?, ?), (?, ?), (?, ?)', [old, spoolId, lost, spoolId, otherSpool, 'another-spool-0123456789']);
    await writeFile(join(home, 'failed', `connection-${lost}.batchsql`), '{}');
    await q.spool('INSERT INTO prune (job) VALUES (1)');
    const summary = await q.run();
    expect(summary.datasources.main!.pruned).toBe(1);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [old])).toBe(0);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [lost])).toBe(1);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [otherSpool])).toBe(1);
    // Once that file is gone, the next drain prunes down to nothing of this spool.
    await (await import('node:fs/promises')).unlink(join(home, 'failed', `connection-${lost}.batchsql`));
    await q.spool('DO 1');
    await q.run();
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE spool = ?', [spoolId])).toBe(0);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [otherSpool])).toBe(1);
  });
});

describe('statements that commit implicitly (DDL), ledger on', () => {
  it('run outside the ledger transaction and succeed normally', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('CREATE TABLE made_by_job (a INT)');
    await q.spool('INSERT INTO made_by_job VALUES (?)', [1]);
    await q.spool('ALTER TABLE made_by_job ADD b INT');
    expect(await q.run()).toMatchObject({ success: 3, uncertain: 0 });
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM made_by_job')).toBe(1);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('a runner SIGKILLed while one is in flight: the job goes to failed/uncertain-… and is never run again', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE ddl_target (a INT)');
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    q = new QueryBatch({ home });
    const holder = await mysql.createConnection({ uri: t.url });
    try {
      const ddl = await q.spool('ALTER TABLE ddl_target ADD b INT');
      const next = await q.spool('INSERT INTO ddl_target (a) VALUES (?)', [1]);
      // The ALTER waits for a metadata lock another session holds, so it is in flight when the runner dies.
      await holder.query('START TRANSACTION');
      await holder.query('SELECT * FROM ddl_target');
      const runner = startRunner(home);
      await sessionRunning(t, 'ALTER TABLE ddl_target%', 20_000);
      runner.child.kill('SIGKILL');
      expect((await runner.exit).signal).toBe('SIGKILL');
      await holder.query('COMMIT');

      // The dead runner's session may live on in the server for a moment (it holds the
      // datasource lock until then): runs skip the datasource meanwhile.
      let uncertain = 0;
      let success = 0;
      for (let i = 0; i < 50 && success === 0; i++) {
        const summary = await q.run();
        uncertain += summary.uncertain;
        success += summary.success;
        if (success === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect({ uncertain, success }).toEqual({ uncertain: 1, success: 1 });
      expect(await readdir(join(home, 'failed'))).toEqual([`uncertain-${ddl}.batchsql`]);
      const errors = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
      expect(errors).toMatch(new RegExp(`uncertain id=${ddl} .*may or may not have run`));
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
      expect(next).toBeTruthy();

      // An operator sees it as uncertain; respool --all (and --since) leave it for a person,
      // saying why; by name, once checked, it goes back.
      const uncertainName = `uncertain-${ddl}.batchsql`;
      expect(await q.failed()).toMatchObject([{ name: uncertainName, class: 'uncertain', id: ddl }]);
      expect(await q.status()).toMatchObject({ failed: { uncertain: 1, failed: 0, connection: 0, other: 0 } });
      for (const selection of [{ all: true }, { since: new Date(0) }]) {
        const bulk = await q.respool(selection);
        expect(bulk.respooled).toEqual([]);
        expect(bulk.skipped).toEqual([{ name: uncertainName, reason: expect.stringMatching(/^uncertain: it may have run already/) }]);
        expect(await readdir(join(home, 'failed'))).toEqual([uncertainName]);
      }
      const byName = await q.respool({ names: [uncertainName] });
      expect(byName.respooled).toMatchObject([{ id: ddl }]);
      expect(await readdir(join(home, 'failed'))).toEqual([]);
    } finally {
      await holder.end();
    }
  });

  it('a connection lost while one runs (cut under the client, no answer): failed/uncertain-…, never run again', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE ddl_cut (a INT)');
    const target = new URL(t.url);
    const proxy = await cuttingProxy({ host: target.hostname, port: Number(target.port || 3306) }, 'ALTER TABLE ddl_cut');
    q = new QueryBatch({ home, configFile: false, datasources: { main: `mysql://root@127.0.0.1:${proxy.port}/${t.name}` } });
    const holder = await mysql.createConnection({ uri: t.url });
    try {
      const ddl = await q.spool('ALTER TABLE ddl_cut ADD b INT');
      await q.spool('INSERT INTO ddl_cut (a) VALUES (?)', [1]);
      // The ALTER waits on a metadata lock, so the server is still running it when the proxy cuts the client.
      await holder.query('START TRANSACTION');
      await holder.query('SELECT * FROM ddl_cut');
      proxy.arm();
      expect(await q.run()).toMatchObject({ uncertain: 1, success: 0, deferred: 1 });
      expect(proxy.cuts).toBe(1);
      await holder.query('COMMIT');
      // Whether the server finished it (or dropped it when its side closed) the runner can't
      // know: it asks a person.
      expect(await readdir(join(home, 'failed'))).toEqual([`uncertain-${ddl}.batchsql`]);
      const errors = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
      expect(errors).toMatch(new RegExp(`uncertain id=${ddl} .*may or may not have run`));
      // Never re-run (a second ALTER ... ADD b would fail: nothing goes to failed-…); the rest runs.
      let success = 0;
      for (let i = 0; i < 50 && success === 0; i++) {
        success += (await q.run()).success;
        if (success === 0) await new Promise((r) => setTimeout(r, 100)); // the cut session holds the lock a moment
      }
      expect(success).toBe(1);
      expect(await readdir(join(home, 'failed'))).toEqual([`uncertain-${ddl}.batchsql`]);
    } finally {
      await holder.end();
      await q.close();
      await proxy.close();
    }
  });
});

describe('temp files in spool/.tmp', () => {
  it('older than tmpMaxAgeMs are removed at the start of a run, newer ones kept, none ever executed', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE tmpjobs (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, tmpMaxAgeMs: 60_000 });
    const real = await q.spool('INSERT INTO tmpjobs (job) VALUES (?)', [1]);
    // What a producer killed between write and rename leaves: a complete, valid job in .tmp.
    const text = await readFile(spoolPathFor(join(home, 'spool'), 'main', real), 'utf8');
    const stale = join(home, 'spool', '.tmp', `${real}.batchsql.4242.aaaaaaaaaaaa.tmp`);
    const fresh = join(home, 'spool', '.tmp', `${real}.batchsql.4243.bbbbbbbbbbbb.tmp`);
    await writeFile(stale, text);
    await writeFile(fresh, text);
    const old = new Date(Date.now() - 120_000);
    await utimes(stale, old, old);
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 1, tmpRemoved: 1 });
    expect(await readdir(join(home, 'spool', '.tmp'))).toEqual([`${real}.batchsql.4243.bbbbbbbbbbbb.tmp`]);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM tmpjobs')).toBe(1);
  });

  it('a leaf-index temp whose writer is dead is removed at once; a live writer\'s is kept', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, tmpMaxAgeMs: 60_000 });
    await q.spool('DO 1');
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const tmp = join(home, 'spool', '.tmp');
    await writeFile(join(tmp, `index.${dead}.cccccccccccc.tmp`), '{}');
    await writeFile(join(tmp, `index.${process.pid}.dddddddddddd.tmp`), '{}');
    // A job temp of a dead writer waits out tmpMaxAgeMs: on a spool shared by hosts its pid means nothing here.
    await writeFile(join(tmp, `01K00000000000000000000000.batchsql.${dead}.eeeeeeeeeeee.tmp`), '{}');
    expect(await q.run()).toMatchObject({ success: 1, tmpRemoved: 1 });
    expect((await readdir(tmp)).sort()).toEqual([`01K00000000000000000000000.batchsql.${dead}.eeeeeeeeeeee.tmp`, `index.${process.pid}.dddddddddddd.tmp`]);
  });
});
