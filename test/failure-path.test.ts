/**
 * The failure path (issue 15): refused statements are settled a burst at a time (run/drain.ts
 * #settleRefused, run/claims.ts placeRefused), and what that must keep: each refused job in
 * failed/ once, with its lastError, its error-log line (with the SQL) and its count; the
 * others of its burst run once; a crash loses none and leaves none in both places.
 * MariaDB, a database of its own (test/helpers.ts useTestDatabase).
 */
import { describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { parseErrorLine } from '../src/ops/log-format.js';
import { decodeRecord, encodeRecord, type SpoolRecord } from '../src/spool/record.js';
import { jobFileName, parseJobFileName } from '../src/spool/shards.js';
import { recoverClaims } from '../src/run/recovery.js';
import { layoutOf } from '../src/spool/layout.js';
import type { Params } from '../src/index.js';
import { count, failedNames, filesBelow, jobIdsBelow, removeHome, startRunner, tempHome, useTestDatabase, waitFor } from './helpers.js';

const t = useTestDatabase('failpath');

/** The id of each failed/ file (`failed-<id>.batchsql`; a second copy would be `failed-<id>-1.batchsql`). */
function failedIds(names: readonly string[]): string[] {
  return names.map((name) => {
    const m = /^failed-(\w{26})\.batchsql$/.exec(name);
    if (!m) throw new Error(`Expected failed/ to hold only failed-<id>.batchsql files; found ${name}`);
    return m[1]!;
  });
}

/** The error log's `sql` lines, by id. */
async function sqlLines(home: string): Promise<Map<string, Array<Record<string, string>>>> {
  const text = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8').catch(() => '');
  const out = new Map<string, Array<Record<string, string>>>();
  for (const line of text.split('\n').filter(Boolean)) {
    const entry = parseErrorLine(line);
    if (entry?.class !== 'sql') continue;
    out.set(entry.id!, [...(out.get(entry.id!) ?? []), entry]);
  }
  return out;
}

/** Spools `jobs` (sql, params) with `producers` at a time: 1 gives files of one job each, more gives segments (ledger on). */
async function spoolAll(q: QueryBatch, jobs: ReadonlyArray<readonly [string, Params]>, producers: number): Promise<string[]> {
  const ids: string[] = new Array(jobs.length);
  for (let k = 0; k < jobs.length; k += producers) {
    await Promise.all(jobs.slice(k, k + producers).map(async ([sql, params], j) => (ids[k + j] = await q.spool(sql, params))));
  }
  return ids;
}

describe('refused statements settled a burst at a time', () => {
  it('each refused job of a burst (alone or in a segment) goes to failed/ once with its lastError, its log line and its count; the others run once, in order', async () => {
    await t.db.query('CREATE TABLE burst (n INT AUTO_INCREMENT PRIMARY KEY, id INT NOT NULL UNIQUE, job INT NOT NULL)');
    await t.db.query('INSERT INTO burst (id, job) VALUES (0, -1)');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    try {
      // Every third job collides with id 0: refused (duplicate key). Half in segments, half in files of their own.
      const job = (k: number): readonly [string, Params] => ['INSERT INTO burst (id, job) VALUES (?, ?)', [k % 3 === 1 ? 0 : k + 1, k]];
      const ids = [
        ...(await spoolAll(q, Array.from({ length: 60 }, (_, k) => job(k)), 20)),
        ...(await spoolAll(q, Array.from({ length: 60 }, (_, k) => job(60 + k)), 1)),
      ];
      expect((await filesBelow(join(home, 'spool'))).some((path) => (parseJobFileName(basename(path))?.count ?? 1) > 1)).toBe(true);
      const refused = ids.filter((_, k) => k % 3 === 1);
      const summary = await q.run();
      expect(summary).toMatchObject({ success: 80, sqlFailed: 40, settled: 0, deferred: 0 });
      // failed/: each refused job once, with one more attempt and its failure.
      expect(failedIds(await failedNames(home)).sort()).toEqual([...refused].sort());
      for (const id of refused) {
        const record = decodeRecord(await readFile(join(home, 'failed', `failed-${id}.batchsql`), 'utf8'));
        expect(record).toMatchObject({ id, attempts: 1, sql: 'INSERT INTO burst (id, job) VALUES (?, ?)', lastError: { class: 'sql', code: 'ER_DUP_ENTRY', errno: 1062 } });
      }
      // The error log: one sql line each, naming where it went, with its SQL.
      const lines = await sqlLines(home);
      expect([...lines.keys()].sort()).toEqual([...refused].sort());
      for (const id of refused) {
        expect(lines.get(id)).toHaveLength(1);
        expect(lines.get(id)![0]).toMatchObject({ moved: `failed/failed-${id}.batchsql`, code: 'ER_DUP_ENTRY', attempts: '1', sql: 'INSERT INTO burst (id, job) VALUES (?, ?)' });
      }
      // The others ran once each, in order; nothing is left in the spool or claimed.
      const [rows] = await t.db.query('SELECT job FROM burst WHERE job >= 0 ORDER BY n');
      expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual(Array.from({ length: 120 }, (_, k) => k).filter((k) => k % 3 !== 1));
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
      // Status by id says failed, and where.
      const status = await q.status(refused[0]!);
      expect(status).toMatchObject({ state: 'failed' });
    } finally {
      await q.close();
      await removeHome(home);
    }
  }, 60_000);

  it("a dead runner's segment claim that still holds a job already written to failed/ gives back only its other jobs: that one neither runs again nor gets a second copy", async () => {
    await t.db.query('CREATE TABLE leftover (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    try {
      const ids = await spoolAll(q, [0, 1, 2].map((k) => ['INSERT INTO leftover (job) VALUES (?)', [k]] as const), 1);
      // The state a crash leaves between writing job 1 to failed/ and rewriting the claim
      // without it: its three jobs in one segment claim of a dead runner, job 1 in failed/ too.
      const records: SpoolRecord[] = [];
      for (const path of await filesBelow(join(home, 'spool'))) {
        records.push(decodeRecord(await readFile(path, 'utf8')));
        await rm(path);
      }
      records.sort((a, b) => a.id.localeCompare(b.id));
      expect(records.map((r) => r.id)).toEqual(ids);
      const claimDir = join(home, 'spool', '.active', `${hostname()}.999999.1`, 'main');
      await mkdir(claimDir, { recursive: true });
      await writeFile(join(claimDir, jobFileName(ids[0]!, 3)), records.map((r) => encodeRecord(r)).join(''));
      const failed: SpoolRecord = { ...records[1]!, attempts: 1, lastError: { class: 'sql', code: 'ER_LOCK_DEADLOCK', message: 'refused before the crash', at: new Date().toISOString() } };
      await writeFile(join(home, 'failed', `failed-${ids[1]}.batchsql`), encodeRecord(failed));
      const summary = await q.run();
      expect(summary).toMatchObject({ success: 2, sqlFailed: 0, recovered: 1 });
      const [rows] = await t.db.query('SELECT job FROM leftover ORDER BY n');
      expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual([0, 2]);
      expect(await failedNames(home)).toEqual([`failed-${ids[1]}.batchsql`]);
      expect(decodeRecord(await readFile(join(home, 'failed', `failed-${ids[1]}.batchsql`), 'utf8')).lastError?.message).toBe('refused before the crash');
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    } finally {
      await q.close();
      await removeHome(home);
    }
  });
});

describe('runner SIGKILLed while it settles refused statements', () => {
  const TOTAL = 2000;
  it(`${TOTAL} refused jobs, runner processes SIGKILLed midway: each job is in failed/ once or still in the spool, never both, none lost; in the end all are in failed/ once`, async () => {
    await t.db.query('CREATE TABLE refuses (id INT PRIMARY KEY, job INT NOT NULL)');
    await t.db.query('INSERT INTO refuses VALUES (1, -1)');
    const home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: { url: t.url } } }));
    try {
      const q = new QueryBatch({ home, durability: 'none' });
      const job = (k: number): readonly [string, Params] => ['INSERT INTO refuses (id, job) VALUES (1, ?)', [k]];
      // Most in segments (16 producers), the last quarter in files of their own.
      const ids = [
        ...(await spoolAll(q, Array.from({ length: TOTAL * 0.75 }, (_, k) => job(k)), 16)),
        ...(await spoolAll(q, Array.from({ length: TOTAL * 0.25 }, (_, k) => job(TOTAL * 0.75 + k)), 1)),
      ];
      await q.close();
      const all = [...ids].sort();
      const kills: number[] = [];
      // What a run finds once it has given a dead runner's claims back (its first step): each job in failed/ once or in the spool, never both.
      const check = async () => {
        await recoverClaims(layoutOf(home), 'the-test', 'main', null);
        expect(await readdir(join(home, 'spool', '.active'))).toEqual([]);
        const inFailed = failedIds(await failedNames(home)); // throws on a second copy (failed-<id>-1.batchsql)
        const pending = await jobIdsBelow(join(home, 'spool'));
        expect(new Set(inFailed).size).toBe(inFailed.length);
        expect(inFailed.filter((id) => pending.includes(id))).toEqual([]);
        expect([...inFailed, ...pending].sort()).toEqual(all);
        return inFailed.length;
      };
      for (const at of [TOTAL * 0.15, TOTAL * 0.4, TOTAL * 0.7]) {
        const runner = startRunner(home);
        await Promise.race([waitFor(async () => ((await readdir(join(home, 'failed'))).length >= at ? true : undefined), 120_000, `${at} files in failed/`), runner.exit]);
        runner.child.kill('SIGKILL');
        const { signal, stderr } = await runner.exit;
        expect(signal, stderr).toBe('SIGKILL');
        kills.push(await check());
      }
      const last = startRunner(home);
      const { code, stdout, stderr } = await last.exit;
      expect(code, stderr).toBe(1); // EXIT_FAILURES: statements were refused
      const summary = JSON.parse(stdout) as { sqlFailed: number; success: number };
      expect(await check()).toBe(TOTAL);
      expect(summary.sqlFailed).toBe(TOTAL - kills[kills.length - 1]!);
      expect(summary.success).toBe(0);
      expect(await readdir(join(home, 'spool', '.active'))).toEqual([]);
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM refuses')).toBe(1);
      // Each job in failed/ has its lastError; the last run logged each job it settled (with the SQL).
      const lines = await sqlLines(home);
      for (const id of all) {
        const record = decodeRecord(await readFile(join(home, 'failed', `failed-${id}.batchsql`), 'utf8'));
        expect(record.lastError).toMatchObject({ class: 'sql', code: 'ER_DUP_ENTRY' });
      }
      const logged = all.filter((id) => lines.get(id)?.some((l) => l.sql === 'INSERT INTO refuses (id, job) VALUES (1, ?)'));
      expect(logged.length).toBeGreaterThanOrEqual(summary.sqlFailed);
      console.log(`[faults] failure path: ${TOTAL} refused jobs, SIGKILLed with ${kills.join(', ')} in failed/; then ${summary.sqlFailed} settled by the last run; ${logged.length} of ${TOTAL} with an error-log line`);
    } finally {
      await removeHome(home);
    }
  }, 300_000);
});
