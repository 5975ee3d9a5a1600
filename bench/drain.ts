import { QueryBatch } from '../src/index.js';
import { type Context, type Row, check, concurrently, freshDir, paramsFor, perSecond, remove, scaled, timed } from './common.js';
import type { DrainTarget } from './targets/target.js';

const TABLE = 'bench_drain';

/** Spools `n` INSERTs into a fresh home, fast (no fsync: only the drain is measured). */
async function spoolInserts(target: DrainTarget, home: string, n: number): Promise<void> {
  const qb = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url: target.url } } });
  const sql = target.insertSql(TABLE);
  await concurrently(n, 32, (i) => qb.spool(sql, paramsFor(i)));
  await qb.close();
}

/** The raw ceiling: the same statements on one client connection, autocommit or one transaction. */
async function rawLoop(target: DrainTarget, n: number, oneTransaction: boolean): Promise<number> {
  await target.resetTable(TABLE);
  const ms = await target.rawLoop(TABLE, n, oneTransaction);
  check((await target.rowCount(TABLE)) === n, `raw ${target.name} loop inserted ${n} rows`);
  return perSecond(n, ms);
}

/**
 * qb.run() drains `n` spooled INSERTs with the ledger on: `batch` 1 commits every statement
 * on its own (one ledger transaction each), the default 32 groups them (group commit).
 */
async function qbDrain(ctx: Context, target: DrainTarget, n: number, batch: number): Promise<{ rate: number; spoolMs: number }> {
  await target.resetTable(TABLE);
  const home = await freshDir(ctx, 'drain');
  try {
    const spoolMs = await timed(() => spoolInserts(target, home, n));
    const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url: target.url, ledger: { batch } } } });
    try {
      let success = 0;
      const ms = await timed(async () => {
        success = (await qb.run()).success;
      });
      check(success === n, `qb.run() ran ${n} statements on ${target.name} (ran ${success})`);
      check((await target.rowCount(TABLE)) === n, `qb.run() inserted ${n} rows on ${target.name}`);
      return { rate: perSecond(n, ms), spoolMs };
    } finally {
      await qb.close();
    }
  } finally {
    await remove(home);
  }
}

/** querybatch's drain, or null (with the reason logged) when it has no driver for the target's URL. */
async function qbDrainIfAvailable(ctx: Context, target: DrainTarget, n: number, batch: number): Promise<number | null> {
  if (target.unavailable !== null) {
    ctx.log(`  querybatch side skipped: ${target.unavailable}`);
    return null;
  }
  return (await qbDrain(ctx, target, n, batch)).rate;
}

/** A drain scenario bound to its database (run.ts names them: `drain`, `drain-pg`, `drain-sqlite`…). */
export type DrainScenario = (ctx: Context) => Promise<Row[]>;

/** Per-statement commit against the raw autocommit loop. */
export function drainOn(scenario: string, target: (ctx: Context) => DrainTarget): DrainScenario {
  return async (ctx) => {
    const on = target(ctx);
    const n = scaled(ctx, 10_000);
    await on.prepare();
    ctx.log(`${scenario}: ${n} INSERTs, raw ${on.name} autocommit loop`);
    const raw = await rawLoop(on, n, false);
    ctx.log(`${scenario}: ${n} INSERTs, qb.run() with ledger.batch 1`);
    const qb = await qbDrainIfAvailable(ctx, on, n, 1);
    await on.dropTable(TABLE);
    return [{
      scenario,
      case: `per-statement commit (ledger on, batch 1), ${n} INSERTs`,
      querybatch: qb,
      comparison: on.perStatementLabel,
      other: raw,
      unit: 'stmts/s',
      target: 0.85,
      ...(on.unavailable === null ? {} : { note: `querybatch side not run: ${on.unavailable}` }),
    }];
  };
}

/** Group commit against the raw loop in one transaction, and against querybatch's own per-statement mode. */
export function drainGroupOn(scenario: string, target: (ctx: Context) => DrainTarget): DrainScenario {
  return async (ctx) => {
    const on = target(ctx);
    const n = scaled(ctx, 10_000);
    await on.prepare();
    ctx.log(`${scenario}: ${n} INSERTs, raw ${on.name} single transaction`);
    const raw = await rawLoop(on, n, true);
    ctx.log(`${scenario}: ${n} INSERTs, qb.run() with group commit (ledger.batch 32, the default)`);
    const group = await qbDrainIfAvailable(ctx, on, n, 32);
    ctx.log(`${scenario}: ${n} INSERTs, qb.run() with ledger.batch 1, for the ratio`);
    const single = await qbDrainIfAvailable(ctx, on, n, 1);
    await on.dropTable(TABLE);
    const note = on.unavailable === null ? {} : { note: `querybatch side not run: ${on.unavailable}` };
    return [{
      scenario,
      case: `group commit (ledger.batch 32, default), ${n} INSERTs`,
      querybatch: group,
      comparison: on.oneTransactionLabel,
      other: raw,
      unit: 'stmts/s',
      target: 0.8,
      ...note,
    }, {
      scenario,
      case: `group commit vs per-statement commit, ${n} INSERTs`,
      querybatch: group,
      comparison: 'querybatch, ledger.batch 1 (per-statement)',
      other: single,
      unit: 'stmts/s',
      target: 4,
      ...note,
    }];
  };
}

/**
 * Coalescing (issue 15): 20,000 single-row INSERTs drained with group commit, which merges
 * each group's INSERTs into one multi-row INSERT, against (a) the raw client loop of the same
 * statements in one transaction and (b) the database's command-line client loading the same
 * rows as multi-row INSERTs of 1,000 rows. At the default group size (32) and at 1,000.
 */
export function coalesceOn(scenario: string, target: (ctx: Context) => DrainTarget): DrainScenario {
  return async (ctx) => {
    const on = target(ctx);
    const n = scaled(ctx, 20_000);
    await on.prepare();
    ctx.log(`${scenario}: ${n} INSERTs, raw ${on.name} single transaction`);
    const raw = await rawLoop(on, n, true);
    ctx.log(`${scenario}: ${n} rows, ${on.bulkLabel}`);
    await on.resetTable(TABLE);
    const scratch = await freshDir(ctx, 'bulk');
    let bulk: number;
    try {
      bulk = perSecond(n, await on.bulkLoad(TABLE, n, scratch));
    } finally {
      await remove(scratch);
    }
    check((await on.rowCount(TABLE)) === n, `${on.bulkLabel} inserted ${n} rows`);
    const rows: Row[] = [];
    for (const batch of [32, 1000]) {
      ctx.log(`${scenario}: ${n} INSERTs, qb.run() with group commit (ledger.batch ${batch}), merged`);
      const qb = await qbDrainIfAvailable(ctx, on, n, batch);
      const note = on.unavailable === null ? {} : { note: `querybatch side not run: ${on.unavailable}` };
      const label = `coalesced drain, ledger.batch ${batch}${batch === 32 ? ' (default)' : ''}, ${n} single-row INSERTs`;
      rows.push(
        { scenario, case: label, querybatch: qb, comparison: on.oneTransactionLabel, other: raw, unit: 'rows/s', target: 4, ...note },
        { scenario, case: label, querybatch: qb, comparison: on.bulkLabel, other: bulk, unit: 'rows/s', target: 0.5, ...note },
      );
    }
    await on.dropTable(TABLE);
    return rows;
  };
}
