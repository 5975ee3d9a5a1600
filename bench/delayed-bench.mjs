// What waiting delayed jobs cost a run: an empty run's wall time with N jobs delayed (not due)
// against none, and the time to promote N due jobs. Embedded SQLite, durability 'none' for the
// spooling (the runs fsync as configured). Names only are listed; no delayed file is opened.
// Usage: npm run build && node bench/delayed-bench.mjs [N=10000]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueryBatch } from '../dist/index.js';

const N = Number(process.argv[2] ?? 10_000);
const home = await mkdtemp(join(tmpdir(), 'qb-jobopts-bench-'));
const qb = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: 'sqlite:bench.db' } });

async function median(f, times = 5) {
  const ms = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[Math.floor(times / 2)];
}

await qb.run();
const empty = await median(() => qb.run());
const due = Date.now() + 60_000 + N * 2;
for (let i = 0; i < N; i++) await qb.spool('SELECT 1', [], { runAt: new Date(due + i) });
if (Date.now() > due) throw new Error('spooling took longer than the delay: run with a smaller N');
const before = await qb.run();
if (before.delayed !== N) throw new Error(`expected ${N} delayed, found ${before.delayed}`);
const waiting = await median(() => qb.run());
const wait = due + N - Date.now();
await sleep(Math.max(0, wait + 10));
const t0 = performance.now();
const summary = await qb.run({ limit: 0 });
if ((await qb.status()).pending.main?.count !== N) throw new Error('expected every delayed job promoted');
const promoteMs = performance.now() - t0;
console.log(JSON.stringify({
  N,
  emptyRunMs: Math.round(empty),
  runWithNDelayedMs: Math.round(waiting),
  perDelayedJobUs: Math.round(((waiting - empty) / N) * 1000 * 10) / 10,
  promoteNDueMs: Math.round(promoteMs),
  delayedAfterPromotion: summary.delayed,
}));
await qb.close();
await rm(home, { recursive: true, force: true });
