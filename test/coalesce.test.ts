import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryBatch, type QueryBatchOptions } from '../src/index.js';
import { DIALECTS, type DialectFixture, type FixtureDatabase } from './dialects.js';
import { failedNames, removeHome, tempHome } from './helpers.js';

/**
 * Coalescing (issue 15), on every dialect: consecutive single-row INSERTs of a group commit
 * run as one multi-row INSERT, each job with its ledger row and its own figure, in order; a
 * job that fails fails alone. Each table records which statement inserted a row (`s`), so
 * the tests see how many statements ran:
 * - MariaDB: `DEFAULT CURRENT_TIMESTAMP(6)`, the statement's start (each statement of a
 *   multi-statement query gets its own);
 * - PostgreSQL: a FOR EACH STATEMENT trigger numbers the statements (it fires once per
 *   merged INSERT: docs/guarantees.md);
 * - SQLite: `DEFAULT (strftime(… 'now'))`, fixed for one statement's run; a BEFORE trigger
 *   that counts for a few ms makes two statements' times differ.
 */

/** A table `coalesce_jobs (k, v, s)`: `v` the job's value (NOT NULL, at most 10 characters), `s` the statement that inserted the row. */
function tableOf(dialect: DialectFixture): string[] {
  switch (dialect.name) {
    case 'mariadb':
      return ['CREATE TABLE coalesce_jobs (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10) NOT NULL, s VARCHAR(40) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB'];
    case 'postgres':
      return [
        'CREATE TABLE coalesce_jobs (k SERIAL PRIMARY KEY, v VARCHAR(10) NOT NULL, s INT)',
        'CREATE SEQUENCE coalesce_statements',
        'CREATE TABLE coalesce_current (n INT)',
        'INSERT INTO coalesce_current VALUES (0)',
        "CREATE FUNCTION coalesce_next() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE coalesce_current SET n = nextval('coalesce_statements'); RETURN NULL; END $$",
        'CREATE TRIGGER coalesce_count BEFORE INSERT ON coalesce_jobs FOR EACH STATEMENT EXECUTE FUNCTION coalesce_next()',
        'CREATE FUNCTION coalesce_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.s := (SELECT n FROM coalesce_current); RETURN NEW; END $$',
        'CREATE TRIGGER coalesce_row BEFORE INSERT ON coalesce_jobs FOR EACH ROW EXECUTE FUNCTION coalesce_mark()',
      ];
    case 'sqlite':
      return [
        "CREATE TABLE coalesce_jobs (k INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL CHECK (length(v) <= 10), s TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')))",
        'CREATE TABLE coalesce_spin (n INTEGER)',
        'CREATE TRIGGER coalesce_slow BEFORE INSERT ON coalesce_jobs BEGIN INSERT INTO coalesce_spin SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT x FROM c); END',
      ];
  }
}

/** A trigger that drops the row of value 'skip' (the INSERT goes on without it), where the dialect has one. */
function skippingTrigger(dialect: DialectFixture): string[] | null {
  switch (dialect.name) {
    case 'mariadb':
      return null; // a MySQL trigger can only fail the statement, never skip a row
    case 'postgres':
      return [
        "CREATE FUNCTION coalesce_skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.v = 'skip' THEN RETURN NULL; END IF; RETURN NEW; END $$",
        'CREATE TRIGGER coalesce_skip BEFORE INSERT ON coalesce_jobs FOR EACH ROW EXECUTE FUNCTION coalesce_skip()',
      ];
    case 'sqlite':
      return ["CREATE TRIGGER coalesce_skip BEFORE INSERT ON coalesce_jobs WHEN NEW.v = 'skip' BEGIN SELECT RAISE(IGNORE); END"];
  }
}

describe.each(DIALECTS)('coalescing: $name', (dialect) => {
  let home: string;
  let db: FixtureDatabase;
  const open: QueryBatch[] = [];

  function qb(options: Partial<QueryBatchOptions> = {}): QueryBatch {
    const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url: db.url } }, ...options });
    open.push(q);
    return q;
  }

  async function rows(): Promise<Array<{ v: string; s: string }>> {
    return (await db.query('SELECT v, s FROM coalesce_jobs ORDER BY k')).map((r) => ({ v: String(r.v), s: String(r.s) }));
  }

  async function spoolAll(q: QueryBatch, values: readonly (string | null)[]): Promise<string[]> {
    const ids: string[] = [];
    for (const v of values) ids.push(await q.spool('INSERT INTO coalesce_jobs (v) VALUES (?)', [v]));
    return ids;
  }

  beforeEach(async () => {
    home = await tempHome();
    db = await dialect.open(home);
    for (const sql of tableOf(dialect)) await db.exec(sql);
  });

  afterEach(async () => {
    for (const q of open.splice(0)) await q.close();
    await db.close();
    await removeHome(home);
  });

  it('consecutive single-row INSERTs run as one multi-row INSERT: in order, each job with its ledger row and 1 affected row', async () => {
    const q = qb();
    const values = Array.from({ length: 12 }, (_, i) => `job ${i}`);
    const ids = await spoolAll(q, values);
    expect(await q.run()).toMatchObject({ success: 12, sqlFailed: 0, connectionFailed: 0 });
    const inserted = await rows();
    expect(inserted.map((r) => r.v)).toEqual(values);
    // One group (batch 32), one statement.
    expect(new Set(inserted.map((r) => r.s)).size).toBe(1);
    for (const id of ids) expect(await q.status(id)).toMatchObject({ state: 'succeeded', affectedRows: 1 });
  });

  it('each merged job\'s ledger row commits with its row (exactly once)', async () => {
    // A paused datasource's older job keeps the end-of-run prune off the newer ledger rows.
    const q = qb({ datasources: { main: { url: db.url }, held: { url: db.url } } });
    await q.spool('INSERT INTO coalesce_jobs (v) VALUES (?)', ['held'], { datasource: 'held' });
    await q.pause('held');
    const ids = await spoolAll(q, ['m1', 'm2', 'm3', 'm4']);
    expect(await q.run()).toMatchObject({ success: 4, sqlFailed: 0 });
    const inserted = await rows();
    expect(inserted.map((r) => r.v)).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(new Set(inserted.map((r) => r.s)).size).toBe(1);
    expect((await db.query('SELECT id FROM querybatch_ledger ORDER BY id')).map((r) => String(r.id))).toEqual([...ids].sort());
  });

  it('jobs with another shape between them split the run, and still run in order', async () => {
    const q = qb();
    await spoolAll(q, ['a1', 'a2']);
    await q.spool('INSERT INTO coalesce_jobs (v)  VALUES (?)', ['other']); // another text before the row: its own statement
    await spoolAll(q, ['b1', 'b2']);
    expect(await q.run()).toMatchObject({ success: 5, sqlFailed: 0 });
    const inserted = await rows();
    expect(inserted.map((r) => r.v)).toEqual(['a1', 'a2', 'other', 'b1', 'b2']);
    const statementOf = (v: string) => inserted.find((r) => r.v === v)!.s;
    expect(statementOf('a1')).toBe(statementOf('a2'));
    expect(statementOf('b1')).toBe(statementOf('b2'));
    expect(new Set(inserted.map((r) => r.s)).size).toBe(3);
  });

  it('a job the merged INSERT fails on fails alone: the others commit once, in order, with their ledger rows', async () => {
    const q = qb();
    const ids = await spoolAll(q, ['ok 1', 'ok 2', 'far too long for v', 'ok 3', null, 'ok 4']);
    expect(await q.run()).toMatchObject({ success: 4, sqlFailed: 2, connectionFailed: 0 });
    expect((await rows()).map((r) => r.v)).toEqual(['ok 1', 'ok 2', 'ok 3', 'ok 4']);
    expect(await failedNames(home)).toEqual([`failed-${ids[2]}.batchsql`, `failed-${ids[4]}.batchsql`].sort());
    // A second run has nothing left to do: nothing runs twice.
    expect(await q.run()).toMatchObject({ success: 0, settled: 0, sqlFailed: 0 });
    expect((await rows()).length).toBe(4);
  });

  it('a trigger that skips a row: the merged INSERT is not used, each job keeps its own figure', async (ctx) => {
    const trigger = skippingTrigger(dialect);
    if (trigger === null) return ctx.skip();
    for (const sql of trigger) await db.exec(sql);
    const q = qb();
    const ids = await spoolAll(q, ['one', 'skip', 'two']);
    expect(await q.run()).toMatchObject({ success: 3, sqlFailed: 0 });
    expect((await rows()).map((r) => r.v)).toEqual(['one', 'two']);
    expect(await q.status(ids[0]!)).toMatchObject({ affectedRows: 1 });
    expect(await q.status(ids[1]!)).toMatchObject({ affectedRows: 0 });
    expect(await q.status(ids[2]!)).toMatchObject({ affectedRows: 1 });
  });

  it('a run of mergeable INSERTs fills one group past ledger.batch: ledger.batch counts statements, a merged run once', async () => {
    const q = qb({ datasources: { main: { url: db.url, ledger: { batch: 4 } } } });
    const values = Array.from({ length: 60 }, (_, i) => `r${i}`);
    const ids = await spoolAll(q, values);
    expect(await q.run()).toMatchObject({ success: 60, sqlFailed: 0 });
    const inserted = await rows();
    expect(inserted.map((r) => r.v)).toEqual(values);
    // 60 jobs at batch 4: one group, one statement (15 groups, so 15 statements, before).
    expect(new Set(inserted.map((r) => r.s)).size).toBe(1);
    for (const id of [ids[0]!, ids[59]!]) expect(await q.status(id)).toMatchObject({ state: 'succeeded', affectedRows: 1 });
  });

  it('a refused job in a group grown past ledger.batch: the group goes again in parts of batch jobs, only the part holding it one by one', async () => {
    const q = qb({ datasources: { main: { url: db.url, ledger: { batch: 4 } } } });
    const values = ['p0', 'p1', 'p2', 'p3', 'p4', 'far too long for v', 'p6', 'p7', 'p8', 'p9', 'p10', 'p11'];
    const ids = await spoolAll(q, values);
    expect(await q.run()).toMatchObject({ success: 11, sqlFailed: 1, connectionFailed: 0 });
    const inserted = await rows();
    expect(inserted.map((r) => r.v)).toEqual(values.filter((v) => v.length <= 10));
    expect(await failedNames(home)).toEqual([`failed-${ids[5]}.batchsql`]);
    // Parts [p0..p3] and [p8..p11] merged (one statement each); [p4..p7] one by one (three).
    const statementOf = (v: string) => inserted.find((r) => r.v === v)!.s;
    expect(new Set(['p0', 'p1', 'p2', 'p3'].map(statementOf)).size).toBe(1);
    expect(new Set(['p8', 'p9', 'p10', 'p11'].map(statementOf)).size).toBe(1);
    expect(new Set(inserted.map((r) => r.s)).size).toBe(5);
  });

  it('statements that can\'t merge still count one each against ledger.batch', async () => {
    const q = qb({ datasources: { main: { url: db.url, ledger: { batch: 2 } } } });
    // Each text differs before its row: six statements, three groups of two.
    for (let i = 0; i < 6; i++) await q.spool(`INSERT INTO coalesce_jobs (v)${' '.repeat(i + 1)}VALUES (?)`, [`u${i}`]);
    await spoolAll(q, ['m1', 'm2', 'm3']);
    expect(await q.run()).toMatchObject({ success: 9, sqlFailed: 0 });
    const inserted = await rows();
    expect(inserted.map((r) => r.v)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'm1', 'm2', 'm3']);
    const statementOf = (v: string) => inserted.find((r) => r.v === v)!.s;
    expect(new Set(['m1', 'm2', 'm3'].map(statementOf)).size).toBe(1);
    expect(new Set(inserted.map((r) => r.s)).size).toBe(7);
  });

  it('ledger.coalesce false never merges, and a group holds ledger.batch jobs', async () => {
    const q = qb({ datasources: { main: { url: db.url, ledger: { batch: 4, coalesce: false } } } });
    const values = Array.from({ length: 6 }, (_, i) => `n${i}`);
    await spoolAll(q, values);
    expect(await q.run()).toMatchObject({ success: 6, sqlFailed: 0 });
    const inserted = await rows();
    expect(inserted.map((r) => r.v)).toEqual(values);
    expect(new Set(inserted.map((r) => r.s)).size).toBe(6);
  });

  it('per-statement mode (ledger.batch 1) never merges', async () => {
    const q = qb({ datasources: { main: { url: db.url, ledger: { batch: 1 } } } });
    await spoolAll(q, ['x1', 'x2', 'x3']);
    expect(await q.run()).toMatchObject({ success: 3 });
    expect(new Set((await rows()).map((r) => r.s)).size).toBe(3);
  });
});
