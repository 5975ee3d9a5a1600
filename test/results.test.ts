import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { QueryBatch, isQueryBatchError } from '../src/index.js';
import { removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('results');
let home: string;
let q: QueryBatch | undefined;

const MiB = 1024 * 1024;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
});

describe('paged results of background SELECTs', () => {
  it('pages a 200,000-row (~60 MB) result into ~1 MB pages with exact ranges, streaming: the runner peaks under 150 MB', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    q = new QueryBatch({ home });
    // MariaDB's sequence engine: 200,000 rows of about 300 bytes, no table needed.
    const id = await q.spool("SELECT seq, REPEAT('x', 280) AS pad FROM seq_1_to_200000", [], { captureResult: true });
    // The runner in a process of its own, so its peak memory is its own.
    const script = join(home, 'runner.mjs');
    await writeFile(script, `
      import { QueryBatch } from ${JSON.stringify(join(import.meta.dirname, '..', 'dist', 'index.js'))};
      const qb = new QueryBatch({ home: ${JSON.stringify(home)} });
      const summary = await qb.run();
      await qb.close();
      console.log(JSON.stringify({ success: summary.success, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
    `);
    const { stdout } = await promisify(execFile)(process.execPath, [script]);
    const child = JSON.parse(stdout) as { success: number; maxRssMb: number };
    expect(child.success).toBe(1);
    expect(child.maxRssMb).toBeLessThan(150);

    const result = await q.result(id);
    expect(result).toMatchObject({ id, datasource: 'main', columns: ['seq', 'pad'], totalRows: 200_000, pageBytes: MiB });
    const total = result.pages.reduce((n, p) => n + p.bytes, 0);
    expect(total).toBeGreaterThan(55 * MiB);
    // Pages as full as a whole number of rows allows: never more than one page beyond the minimum.
    expect(result.pages.length).toBeLessThanOrEqual(Math.ceil(total / MiB) + 1);
    let next = 1;
    for (const p of result.pages) {
      expect(p.firstRow).toBe(next);
      expect(p.lastRow - p.firstRow + 1).toBe(p.rowCount);
      expect(p.bytes).toBeLessThanOrEqual(MiB);
      next = p.lastRow + 1;
    }
    expect(next).toBe(200_001);
    // A page holds exactly the rows its range says.
    const middle = Math.ceil(result.pages.length / 2);
    const page = await q.resultPage(id, middle);
    expect(page.rows.map((r) => Number(r[0]))).toEqual(Array.from({ length: page.rowCount }, (_, i) => page.firstRow + i));
    expect((await readdir(join(home, 'logs', 'results', id))).length).toBe(result.pages.length + 1);
  });

  it('makes a row larger than a page a page of its own, and carries typed values exactly', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const id = await q.spool(
      "SELECT seq, IF(seq = 2, REPEAT('y', 3 * 1024 * 1024), 'small') AS v, TIMESTAMP('2026-05-06 07:08:09.010') AS at, UNHEX('00FF80') AS b FROM seq_1_to_3",
      [],
      { captureResult: true },
    );
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0 });
    const result = await q.result(id);
    expect(result.pages.map((p) => [p.firstRow, p.lastRow])).toEqual([[1, 1], [2, 2], [3, 3]]);
    expect(result.pages[1]!.bytes).toBeGreaterThan(3 * MiB);
    const big = await q.resultPage(id, 2);
    expect(big.rows[0]![1]).toBe('y'.repeat(3 * MiB));
    const first = await q.resultPage(id, 1);
    expect(first.rows[0]![2]).toEqual(new Date('2026-05-06T07:08:09.010Z'));
    expect(first.rows[0]![3]).toEqual(Buffer.from([0, 255, 128]));
  });

  it('expires with retentionMs (backdated), says why a result is missing, and leaves nothing of a failed capture', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const id = await q.spool('SELECT 1 AS one', [], { captureResult: true });
    const bad = await q.spool('SELECT * FROM no_such_table', [], { captureResult: true });
    const plain = await q.spool('SELECT 2');
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 1 });
    expect((await q.resultPage(id, 1)).rows).toEqual([[1]]);
    await expect(q.result(bad)).rejects.toSatisfy((e) => isQueryBatchError(e, 'RESULT_NOT_FOUND'));
    await expect(q.result(plain)).rejects.toThrow(/Expected a captured result for job .*; found none/);
    await expect(q.resultPage(id, 2)).rejects.toThrow('Expected a page from 1 to 1');
    expect(await readdir(join(home, 'logs', 'results'))).toEqual([id]);

    const manifest = join(home, 'logs', 'results', id, 'result.json');
    const old = new Date(Date.now() - 25 * 3600_000).toISOString();
    await writeFile(manifest, (await readFile(manifest, 'utf8')).replace(/"finishedAt": "[^"]+"/, `"finishedAt": "${old}"`));
    await expect(q.result(id)).rejects.toThrow(/it expired/);
  });

  it('querybatch spool --capture-result, then result ID and result ID --page 1 in spawned processes; exit 2 when there is none', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    const id = (await runCli(['--home', home, 'spool', '--capture-result', 'SELECT seq AS n FROM seq_1_to_3'])).stdout.trim();
    expect((await runCli(['--home', home, 'run'])).code).toBe(0);
    const summary = await runCli(['--home', home, 'result', id]);
    expect(summary.code).toBe(0);
    expect(summary.stdout).toContain(`${id}: 3 row(s) in 1 page(s)`);
    expect(summary.stdout).toContain('page 1: rows 1-3 (3 rows,');
    const rows = await runCli(['--home', home, 'result', id, '--page', '1']);
    expect(rows.stdout.trim().split('\n')).toEqual(['["1"]', '["2"]', '["3"]']);
    const none = await runCli(['--home', home, 'result', '01M84QJXQD0P2A8H5HWM385099']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('[RESULT_NOT_FOUND]');
  });
});
