import { describe, expect, it } from 'vitest';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { count, failedNames, filesBelow, removeHome, sessionRunning, startRunner, tempHome, useTestDatabase, waitFor } from './helpers.js';

/**
 * Scripts through real crashes and at their limits (issue 12): a runner process SIGKILLed
 * while a statement of a script runs resumes after the last statement that committed (the
 * progress line, and the ledger), replaying the session the script set; a statement that
 * may commit by itself cut short goes to failed/uncertain-…; scripts larger than
 * limits.maxFileBytes are streamed; limits.maxScriptBytes, max_allowed_packet and an edited
 * body are refused before anything of theirs runs twice or at all.
 *
 * The tables have no unique key: a statement that runs twice shows as a second row.
 */
const t = useTestDatabase('script_crash');

async function homeWith(ledger: boolean, limits: Record<string, number> = {}): Promise<string> {
  const home = await tempHome();
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: { url: t.url, ledger } }, limits }));
  return home;
}

/** The rows of `table` as job → how many times it is there. */
async function jobCounts(table: string): Promise<Map<number, number>> {
  const [rows] = await t.db.query(`SELECT job, COUNT(*) AS c FROM ${table} GROUP BY job`);
  return new Map((rows as Array<{ job: number; c: number }>).map((r) => [Number(r.job), Number(r.c)]));
}

function once(...jobs: number[]): Map<number, number> {
  return new Map(jobs.map((j) => [j, 1]));
}

/** Starts a runner and SIGKILLs it while a session of the test database runs a statement matching `like`. */
async function killWhileRunning(home: string, like: string): Promise<void> {
  const runner = startRunner(home);
  const ended = runner.exit.then((e) => {
    throw new Error(`the runner ended (code ${e.code}) before it ran ${like}: ${e.stderr}`);
  });
  await Promise.race([sessionRunning(t, like), ended]);
  runner.child.kill('SIGKILL');
  const { signal } = await runner.exit.catch(() => ({ signal: null }));
  expect(signal).toBe('SIGKILL');
}

/** Waits until no session runs `like` any more (the dead runner's statement ended on the server, and its session with it). */
async function sessionGone(like: string): Promise<void> {
  await waitFor(async () => {
    const [rows] = await t.db.query('SELECT COUNT(*) AS c FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID() AND DB = ?', [like, t.name]);
    return Number((rows as Array<{ c: number }>)[0]!.c) === 0 ? true : undefined;
  }, 15_000, `the end of ${like}`);
}

/**
 * Runs runner processes until one drained the datasource (a killed runner's session may
 * hold the datasource's lock a moment longer: a run meanwhile skips it as busy). Returns
 * the last run's summary. `exitCode`: 1 when it is to settle a failure (run exits 1 when anything failed).
 */
async function runToEnd(home: string, exitCode = 0): Promise<Record<string, unknown>> {
  for (let i = 0; ; i++) {
    const { code, stdout, stderr } = await startRunner(home).exit;
    expect(code, stderr).toBe(exitCode);
    const summary = JSON.parse(stdout) as Record<string, unknown> & { datasources: { main: { busy?: boolean } } };
    if (!summary.datasources.main.busy || i >= 30) return summary;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The script's file (claimed or pending) below spool/, and its progress line's count. */
async function scriptFileOf(home: string, id: string): Promise<{ path: string; done: number }> {
  const path = (await filesBelow(join(home, 'spool'))).find((p) => p.includes(id));
  if (path === undefined) throw new Error(`no file of ${id} below spool/`);
  const [, progress] = (await readFile(path, 'utf8')).split('\n', 2);
  return { path, done: (JSON.parse(progress!) as { done: number }).done };
}

async function spoolScript(home: string, text: string): Promise<string> {
  const q = new QueryBatch({ home, durability: 'none' });
  try {
    return await q.spoolScript(text);
  } finally {
    await q.close();
  }
}

describe('a runner SIGKILLed in the middle of a script', () => {
  for (const ledger of [true, false]) {
    it(`resumes after the last statement committed: every row once${ledger ? '' : ', but the one in flight'} (ledger ${ledger ? 'on' : 'off'})`, async () => {
      const table = `k_plain_${ledger ? 'l' : 'n'}`;
      await t.db.query(`CREATE TABLE ${table} (job INT NOT NULL)`);
      const home = await homeWith(ledger);
      try {
        const lines = Array.from({ length: 10 }, (_, k) => (k + 1 === 6 ? `INSERT INTO ${table} (job) VALUES (6 + SLEEP(1));` : `INSERT INTO ${table} (job) VALUES (${k + 1});`));
        const id = await spoolScript(home, lines.join('\n') + '\n');
        await killWhileRunning(home, `%INTO ${table}%SLEEP%`);
        // The progress line counts the five statements before the one in flight.
        expect((await scriptFileOf(home, id)).done).toBe(5);
        await sessionGone(`%INTO ${table}%SLEEP%`);
        const mid = await jobCounts(table);
        expect([...mid.keys()].filter((j) => j !== 6).sort()).toEqual([1, 2, 3, 4, 5]);
        if (ledger) {
          // The server ran the rest of the dead runner's trip (START TRANSACTION; ledger row; INSERT; COMMIT):
          // statement 6 committed with its ledger row, and the progress line never heard. The rerun must go by the ledger.
          expect(mid.get(6)).toBe(1);
          expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [`${id}:000000006`])).toBe(1);
        }

        expect(await runToEnd(home)).toMatchObject({ success: 1, sqlFailed: 0, connectionFailed: 0 });
        const rows = await jobCounts(table);
        if (ledger) {
          // In flight with its ledger row in one transaction: committed with it, or not at all; never twice.
          expect(rows).toEqual(once(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
        } else {
          // Without the ledger only the statement in flight may run twice (it did, when the server finished it).
          expect(rows.get(6)).toBe((mid.get(6) ?? 0) + 1);
          rows.delete(6);
          expect(rows).toEqual(once(1, 2, 3, 4, 5, 7, 8, 9, 10));
        }
        expect(await filesBelow(join(home, 'spool'))).toEqual([]);
        expect(await failedNames(home)).toEqual([]);
      } finally {
        await removeHome(home);
      }
    }, 30_000);

    it(`statements of the script's own open transaction (SET autocommit = 0) are not counted: the rerun runs them once (ledger ${ledger ? 'on' : 'off'})`, async () => {
      const table = `k_tx_${ledger ? 'l' : 'n'}`;
      await t.db.query(`CREATE TABLE ${table} (job INT NOT NULL)`);
      const home = await homeWith(ledger);
      try {
        const id = await spoolScript(home, `INSERT INTO ${table} (job) VALUES (1);
SET autocommit = 0;
INSERT INTO ${table} (job) VALUES (2);
INSERT INTO ${table} (job) VALUES (3);
INSERT INTO ${table} (job) VALUES (4 + SLEEP(1));
INSERT INTO ${table} (job) VALUES (5);
COMMIT;
INSERT INTO ${table} (job) VALUES (6);
COMMIT;
`);
        await killWhileRunning(home, `%INTO ${table}%SLEEP%`);
        // Statements 3 and 4 ran, in a transaction that never committed: not counted.
        expect((await scriptFileOf(home, id)).done).toBe(2);
        await sessionGone(`%INTO ${table}%SLEEP%`);
        expect(await jobCounts(table)).toEqual(once(1));
        if (ledger) {
          // The ledger rows of statements 3 and 4 were in that transaction too: only statement 1's is there.
          const [keys] = await t.db.query('SELECT id FROM querybatch_ledger WHERE id LIKE ?', [`${id}:%`]);
          expect((keys as Array<{ id: string }>).map((r) => r.id)).toEqual([`${id}:000000001`]);
        }

        expect(await runToEnd(home)).toMatchObject({ success: 1, sqlFailed: 0, connectionFailed: 0 });
        expect(await jobCounts(table)).toEqual(once(1, 2, 3, 4, 5, 6));
        expect(await failedNames(home)).toEqual([]);
      } finally {
        await removeHome(home);
      }
    }, 30_000);
  }

  it('a variable the script SET before the crash point is set again on resume (ledger on)', async () => {
    await t.db.query('CREATE TABLE k_var (job INT NOT NULL, v VARCHAR(10))');
    const home = await homeWith(true);
    try {
      const id = await spoolScript(home, `SET @v := 'x';
INSERT INTO k_var (job, v) VALUES (1, 'a');
INSERT INTO k_var (job, v) VALUES (2 + SLEEP(1), 'b');
INSERT INTO k_var (job, v) VALUES (3, @v);
`);
      await killWhileRunning(home, '%INTO k_var%SLEEP%');
      expect((await scriptFileOf(home, id)).done).toBe(2);
      expect(await runToEnd(home)).toMatchObject({ success: 1, sqlFailed: 0 });
      const [rows] = await t.db.query('SELECT job, v FROM k_var ORDER BY job');
      expect(rows).toEqual([{ job: 1, v: 'a' }, { job: 2, v: 'b' }, { job: 3, v: 'x' }]);
    } finally {
      await removeHome(home);
    }
  }, 30_000);

  it('cut short in a DDL statement: the next run moves it to failed/uncertain-… (logged, its progress kept); a respool resumes at that statement', async () => {
    await t.db.query('CREATE TABLE k_ddl (job INT NOT NULL)');
    const home = await homeWith(true);
    try {
      const id = await spoolScript(home, `INSERT INTO k_ddl (job) VALUES (1);
INSERT INTO k_ddl (job) VALUES (2);
CREATE TABLE k_ddl_made AS SELECT SLEEP(1) AS s;
INSERT INTO k_ddl (job) VALUES (3);
`);
      await killWhileRunning(home, '%CREATE TABLE k_ddl_made%');
      expect((await scriptFileOf(home, id)).path).toMatch(/\.uncertain$/);

      expect(await runToEnd(home, 1)).toMatchObject({ success: 0, uncertain: 1 });
      const name = `uncertain-${id}.batchsql`;
      expect(await failedNames(home)).toEqual([name]);
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
      const errorLog = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
      expect(errorLog).toContain(id);
      expect(errorLog).toContain(`failed/${name}`);
      const q = new QueryBatch({ home, durability: 'none' });
      try {
        const detail = await q.failedFile(name);
        expect(detail.class).toBe('uncertain');
        expect(detail.script).toMatchObject({ statements: 4, done: 2 });
        expect(await jobCounts('k_ddl')).toEqual(once(1, 2));

        // The operator's check: whatever the dead runner's CREATE did, the table is made again by the respool.
        await sessionGone('%CREATE TABLE k_ddl_made%');
        await t.db.query('DROP TABLE IF EXISTS k_ddl_made');
        expect(await q.respool({ names: [name] })).toMatchObject({ respooled: [{ id }] });
      } finally {
        await q.close();
      }
      expect(await runToEnd(home)).toMatchObject({ success: 1, sqlFailed: 0 });
      expect(await jobCounts('k_ddl')).toEqual(once(1, 2, 3));
      expect(await count(t.db, "SELECT COUNT(*) AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'k_ddl_made'")).toBe(1);
      expect(await failedNames(home)).toEqual([]);
    } finally {
      await t.db.query('DROP TABLE IF EXISTS k_ddl_made');
      await removeHome(home);
    }
  }, 30_000);
});

describe('script limits', () => {
  /** 1,100 INSERTs of 20 rows each, about 2 MB. */
  function bigScript(table: string): string {
    const pad = 'p'.repeat(80);
    const out: string[] = [];
    for (let s = 0; s < 1100; s++) {
      out.push(`INSERT INTO ${table} (job, pad) VALUES ${Array.from({ length: 20 }, (_, r) => `(${s * 20 + r}, '${pad}')`).join(', ')};`);
    }
    return out.join('\n') + '\n';
  }

  it('a script far larger than limits.maxFileBytes runs whole, streamed: from spoolScriptFile and as a .sql drop-in', async () => {
    await t.db.query('CREATE TABLE l_big (job INT NOT NULL, pad VARCHAR(100))');
    const home = await homeWith(false, { maxFileBytes: 65536 });
    const q = new QueryBatch({ home, durability: 'none', dropInSettleMs: 0 });
    try {
      const text = bigScript('l_big');
      expect(Buffer.byteLength(text)).toBeGreaterThan(2_000_000);
      const source = join(home, 'big.sql');
      await writeFile(source, text);
      const id = await q.spoolScriptFile(source);
      const [spooled] = await filesBelow(join(home, 'spool'));
      expect(spooled).toContain(id);
      expect((await readFile(spooled!)).length).toBeGreaterThan(2_000_000);
      await writeFile(join(home, 'spool', 'big-drop-in.sql'), text);

      expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0, invalid: 0 });
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM l_big')).toBe(44_000);
      expect(await count(t.db, 'SELECT COUNT(DISTINCT job) AS c FROM l_big')).toBe(22_000);
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM (SELECT job FROM l_big GROUP BY job HAVING COUNT(*) <> 2) x')).toBe(0);
      expect(await failedNames(home).catch(() => [])).toEqual([]);
    } finally {
      await q.close();
      await removeHome(home);
    }
  }, 60_000);

  it('a script over limits.maxScriptBytes is refused by spoolScript (SQL_TOO_LARGE) and, as a drop-in, kept in failed/ with that reason', async () => {
    await t.db.query('CREATE TABLE l_over (job INT NOT NULL, pad VARCHAR(100))');
    const home = await homeWith(false, { maxFileBytes: 65536, maxScriptBytes: 100_000 });
    const q = new QueryBatch({ home, durability: 'none', dropInSettleMs: 0 });
    try {
      const text = bigScript('l_over').slice(0, 150_000).replace(/[^;]*$/, '\n');
      expect(Buffer.byteLength(text)).toBeGreaterThan(100_000);
      await expect(q.spoolScript(text)).rejects.toMatchObject({ code: 'SQL_TOO_LARGE', message: expect.stringMatching(/limits\.maxScriptBytes/) });
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);

      await mkdir(join(home, 'spool'), { recursive: true });
      await writeFile(join(home, 'spool', 'over.sql'), text);
      const summary = await q.run();
      expect(summary).toMatchObject({ success: 0, invalid: 1 });
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM l_over')).toBe(0);
      const names = await failedNames(home);
      expect(names).toHaveLength(1);
      // Nothing lost: the file as it was dropped in.
      expect(await readFile(join(home, 'failed', names[0]!), 'utf8')).toBe(text);
      const detail = await q.failedFile(names[0]!);
      expect(detail.lastError?.message).toMatch(/limits\.maxScriptBytes/);
    } finally {
      await q.close();
      await removeHome(home);
    }
  }, 30_000);

  it('a statement larger than max_allowed_packet fails at that statement, as an SQL failure naming max_allowed_packet', async () => {
    await t.db.query('CREATE TABLE l_packet (job INT NOT NULL, pad LONGTEXT)');
    const [rows] = await t.db.query('SELECT @@max_allowed_packet AS p');
    const packet = Number((rows as Array<{ p: number }>)[0]!.p);
    expect(packet, 'the test builds a statement of max_allowed_packet in memory').toBeLessThan(200 * 1024 * 1024);
    const home = await homeWith(true);
    const q = new QueryBatch({ home, durability: 'none' });
    try {
      const id = await q.spoolScript(`INSERT INTO l_packet (job) VALUES (1);
INSERT INTO l_packet (job, pad) VALUES (2, '${'x'.repeat(packet + 1024)}');
INSERT INTO l_packet (job) VALUES (3);
`);
      expect(await q.run()).toMatchObject({ success: 0, sqlFailed: 1, connectionFailed: 0 });
      expect(await jobCounts('l_packet')).toEqual(once(1));
      const name = `failed-${id}.batchsql`;
      expect(await failedNames(home)).toEqual([name]);
      const detail = await q.failedFile(name);
      expect(detail.lastError?.message).toMatch(/^Statement 2 of 3 \(line 2\) failed: .*max_allowed_packet/);
      expect(detail.lastError?.statement).toMatchObject({ index: 2, line: 2 });
      expect(detail.script).toMatchObject({ statements: 3, done: 1 });
    } finally {
      await q.close();
      await removeHome(home);
    }
  }, 60_000);
});

describe('a script edited in the spool', () => {
  it('a body that no longer matches its checksum goes to failed/ as invalid before any statement runs', async () => {
    await t.db.query('CREATE TABLE e_rows (job INT NOT NULL)');
    const home = await homeWith(true);
    const q = new QueryBatch({ home, durability: 'none' });
    try {
      const id = await q.spoolScript('INSERT INTO e_rows (job) VALUES (1);\nINSERT INTO e_rows (job) VALUES (2);\n');
      const { path } = await scriptFileOf(home, id);
      const before = await readFile(path, 'utf8');
      // Same size, same statements: only the checksum tells.
      const edited = before.replace('VALUES (2)', 'VALUES (7)');
      expect(edited).not.toBe(before);
      await writeFile(path, edited);

      // (An invalid file counts in sqlFailed too.)
      expect(await q.run()).toMatchObject({ success: 0, sqlFailed: 1, invalid: 1 });
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM e_rows')).toBe(0);
      const names = await failedNames(home);
      expect(names).toHaveLength(1);
      expect(names[0]).toContain(id);
      const detail = await q.failedFile(names[0]!);
      expect(detail.lastError).toMatchObject({ class: 'invalid', code: 'INVALID_SPOOL_FILE', message: expect.stringMatching(/^Checksum mismatch/) });
      expect(detail.script).toMatchObject({ statements: 2, done: 0 });
      expect(await readFile(join(home, 'failed', names[0]!), 'utf8')).toBe(edited);
    } finally {
      await q.close();
      await removeHome(home);
    }
  });
});
