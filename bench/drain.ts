import { QueryBatch } from '../src/index.js';
import { DB_URL, type Context, type Row, check, concurrently, connect, dropTable, freshDir, insertSql, paramsFor, perSecond, remove, resetTable, rowCount, scaled, timed } from './common.js';

const TABLE = 'bench_drain';

/** Spools `n` INSERTs into a fresh home, fast (no fsync: only the drain is measured). */
async function spoolInserts(home: string, n: number): Promise<void> {
  const qb = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url: DB_URL } } });
  const sql = insertSql(TABLE);
  await concurrently(n, 32, (i) => qb.spool(sql, paramsFor(i)));
  await qb.close();
}

/** The raw ceiling: the same statements on one mysql2 connection, autocommit or one transaction. */
async function rawLoop(n: number, oneTransaction: boolean): Promise<number> {
  await resetTable(TABLE);
  const conn = await connect();
  const sql = insertSql(TABLE);
  try {
    await conn.execute(sql, [-1, 'warm-up']); // prepare once, as the runner's cache does
    await conn.query(`TRUNCATE TABLE \`${TABLE}\``);
    const ms = await timed(async () => {
      if (oneTransaction) await conn.query('START TRANSACTION');
      for (let i = 0; i < n; i++) await conn.execute(sql, paramsFor(i));
      if (oneTransaction) await conn.query('COMMIT');
    });
    check((await rowCount(TABLE)) === n, `raw loop inserted ${n} rows`);
    return perSecond(n, ms);
  } finally {
    await conn.end();
  }
}

/**
 * qb.run() drains `n` spooled INSERTs with the ledger on: `batch` 1 commits every statement
 * on its own (one ledger transaction each), the default 32 groups them (group commit).
 */
async function qbDrain(ctx: Context, n: number, batch: number): Promise<{ rate: number; spoolMs: number }> {
  await resetTable(TABLE);
  const home = await freshDir(ctx, 'drain');
  try {
    const spoolMs = await timed(() => spoolInserts(home, n));
    const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url: DB_URL, ledger: { batch } } } });
    try {
      let success = 0;
      const ms = await timed(async () => {
        success = (await qb.run()).success;
      });
      check(success === n, `qb.run() ran ${n} statements (ran ${success})`);
      check((await rowCount(TABLE)) === n, `qb.run() inserted ${n} rows`);
      return { rate: perSecond(n, ms), spoolMs };
    } finally {
      await qb.close();
    }
  } finally {
    await remove(home);
  }
}

export async function drain(ctx: Context): Promise<Row[]> {
  const n = scaled(ctx, 10_000);
  ctx.log(`drain: ${n} INSERTs, raw autocommit loop`);
  const raw = await rawLoop(n, false);
  ctx.log(`drain: ${n} INSERTs, qb.run() with ledger.batch 1`);
  const qb = await qbDrain(ctx, n, 1);
  await dropTable(TABLE);
  return [{
    scenario: 'drain',
    case: `per-statement commit (ledger on, batch 1), ${n} INSERTs`,
    querybatch: qb.rate,
    comparison: 'mysql2 loop, autocommit, 1 connection',
    other: raw,
    unit: 'stmts/s',
    target: 0.85,
  }];
}

export async function drainGroup(ctx: Context): Promise<Row[]> {
  const n = scaled(ctx, 10_000);
  ctx.log(`drain-group: ${n} INSERTs, raw single transaction`);
  const raw = await rawLoop(n, true);
  ctx.log(`drain-group: ${n} INSERTs, qb.run() with group commit (ledger.batch 32, the default)`);
  const group = await qbDrain(ctx, n, 32);
  ctx.log(`drain-group: ${n} INSERTs, qb.run() with ledger.batch 1, for the ratio`);
  const single = await qbDrain(ctx, n, 1);
  await dropTable(TABLE);
  return [{
    scenario: 'drain-group',
    case: `group commit (ledger.batch 32, default), ${n} INSERTs`,
    querybatch: group.rate,
    comparison: 'mysql2 loop, one transaction, 1 connection',
    other: raw,
    unit: 'stmts/s',
    target: 0.8,
  }, {
    scenario: 'drain-group',
    case: `group commit vs per-statement commit, ${n} INSERTs`,
    querybatch: group.rate,
    comparison: 'querybatch, ledger.batch 1 (per-statement)',
    other: single.rate,
    unit: 'stmts/s',
    target: 4,
  }];
}