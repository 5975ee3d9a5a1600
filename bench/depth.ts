import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mkdir, statfs } from 'node:fs/promises';
import { QueryBatch } from '../src/index.js';
import { DB_URL, type Context, type Row, check, concurrently, freshDir, perSecond, remove, timed } from './common.js';

const run = promisify(execFile);
const SAMPLE = 1_000;
const ROUNDS = 3;
/** QB_BENCH_PROFILE=dir: the runner children write CPU profiles there. */
const profile = process.env.QB_BENCH_PROFILE;
const RSS_BUDGET_MB = 200;

interface RunnerReport {
  success: number;
  deferred: number;
  runMs: number;
  walkMs: number;
  left: number;
  peakRssKb: number;
}

/**
 * Spools n `DO 1` jobs with durability 'none' (the million has to fit in minutes), one file
 * each: the filling instance has the ledger off, so concurrent calls do not share segment
 * files (spool/writer.ts) and the backlog is n files, as the scenario asks. The runner
 * child drains them with the default settings (ledger on).
 */
async function fill(home: string, n: number): Promise<number> {
  const qb = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url: DB_URL, ledger: false } } });
  try {
    const ms = await timed(() => concurrently(n, 64, () => qb.spool('DO 1')));
    return perSecond(n, ms);
  } finally {
    await qb.close();
  }
}

async function runner(home: string, limit: number, profileName: string | null): Promise<RunnerReport> {
  const script = fileURLToPath(new URL('./depth-runner.js', import.meta.url));
  const flags = profile && profileName ? ['--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${profileName}.cpuprofile`] : [];
  const { stdout } = await run(process.execPath, [...flags, script, home, DB_URL, String(limit)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as RunnerReport;
}

export async function depth(ctx: Context): Promise<Row[]> {
  const rows: Row[] = [];
  let base: number | null = null;
  for (const n of ctx.depths) {
    await mkdir(ctx.dir, { recursive: true });
    const fs = await statfs(ctx.dir);
    const freeBytes = fs.bavail * fs.bsize;
    const freeInodes = fs.ffree;
    check(freeBytes > n * 8_192 + 2 ** 30 && freeInodes > n * 2, `room for ${n} files in ${ctx.dir} (${Math.round(freeBytes / 2 ** 30)} GiB, ${freeInodes} inodes free)`);
    const home = await freshDir(ctx, `depth-${n}`);
    try {
      ctx.log(`depth: spooling ${n} "DO 1" jobs (durability none)`);
      const spoolRate = await fill(home, n);
      const drained = Math.min(SAMPLE, n);
      // ROUNDS samples, each topped up again so the backlog stays at n; the best one counts
      // (this machine is shared: the slower samples are other people's noise).
      const reports: RunnerReport[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        if (round > 0) await fill(home, drained);
        ctx.log(`depth: runner child drains the oldest ${drained} of ${n} (sample ${round + 1}/${ROUNDS})`);
        const sample = await runner(home, SAMPLE, profile ? `depth-${n}-${round}` : null);
        check(sample.success === drained, `runner drained ${drained} of ${n} (drained ${sample.success})`);
        check(sample.left === n - drained, `${n - drained} left pending (found ${sample.left})`);
        reports.push(sample);
      }
      const report = reports.reduce((a, b) => (b.runMs < a.runMs ? b : a));
      const peakRssKb = Math.max(...reports.map((r) => r.peakRssKb));
      const perFileMs = report.runMs / drained;
      base ??= perFileMs;
      rows.push({
        scenario: 'depth',
        case: `${n} pending: run --limit ${drained}`,
        querybatch: 1000 / perFileMs,
        comparison: `same at ${ctx.depths[0]} pending`,
        other: 1000 / base,
        unit: 'files/s',
        target: 1 / 1.2,
        note: `per file ${perFileMs.toFixed(3)} ms; runner peak RSS ${(peakRssKb / 1024).toFixed(1)} MB; full tree walk ${Math.round(report.walkMs)} ms; DO 1 spooled with durability none at ${Math.round(spoolRate)}/s`,
        extra: { pending: n, perFileMs, peakRssMb: peakRssKb / 1024, walkMs: report.walkMs, runMs: report.runMs, samplesMs: reports.map((r) => Math.round(r.runMs)), spoolRate },
      });
      rows.push({
        scenario: 'depth',
        case: `${n} pending: runner peak RSS`,
        querybatch: peakRssKb / 1024,
        comparison: 'budget',
        other: RSS_BUDGET_MB,
        unit: 'MB',
        target: 1,
        lowerIsBetter: true,
      });
    } finally {
      ctx.log(`depth: removing ${n} files`);
      await remove(home);
    }
  }
  return rows;
}
