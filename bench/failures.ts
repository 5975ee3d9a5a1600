import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { type Context, type Row, check, concurrently, freshDir, paramsFor, perSecond, remove, scaled, timed } from './common.js';
import type { DrainTarget } from './targets/target.js';

const TABLE = 'bench_failures';

/** The failing statement: the row with id 1 is there already, so every job is refused (duplicate key). */
function refusedSql(target: DrainTarget): string {
  return target.insertSql(TABLE).replace('(a, b) VALUES (?, ?)', '(id, a, b) VALUES (1, ?, ?)');
}

/** Lines of the error log naming a refused statement (class sql). */
async function refusedLines(home: string): Promise<number> {
  const text = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8').catch(() => '');
  return text.split('\n').filter((line) => /^\S+ sql id=\S+ .* moved="failed\/failed-[^"]+" .*sql="/.test(line)).length;
}

/**
 * qb.run() settles `n` spooled INSERTs that the database refuses (default config: ledger on,
 * group commit 32): each is moved to failed/ with its lastError, logged to the error log and
 * counted. The clock covers the run alone (the spooling is fast, without fsync).
 */
async function qbFailures(ctx: Context, target: DrainTarget, n: number): Promise<number> {
  await target.resetTable(TABLE);
  const home = await freshDir(ctx, 'failures');
  try {
    const config = { home, configFile: false as const, datasources: { main: { url: target.url } } };
    // The row every job then collides with.
    const seed = new QueryBatch({ ...config, durability: 'none' });
    await seed.spool(refusedSql(target), [0, 'seed']);
    check((await seed.run()).success === 1, `the seed row went into ${target.name}`);
    const sql = refusedSql(target);
    await concurrently(n, 32, (i) => seed.spool(sql, paramsFor(i)));
    await seed.close();
    const qb = new QueryBatch(config);
    try {
      let failed = 0;
      const ms = await timed(async () => {
        failed = (await qb.run()).sqlFailed;
      });
      check(failed === n, `qb.run() counted ${n} refused statements on ${target.name} (counted ${failed})`);
      const files = (await readdir(join(home, 'failed'))).filter((f) => f.startsWith('failed-') && f.endsWith('.batchsql'));
      check(files.length === n, `failed/ holds ${n} files on ${target.name} (holds ${files.length})`);
      check((await target.rowCount(TABLE)) === 1, `nothing but the seed row went into ${target.name}`);
      await qb.close();
      const logged = await refusedLines(home);
      check(logged === n, `the error log has a line for each of the ${n} refused statements (has ${logged})`);
      return perSecond(n, ms);
    } finally {
      await qb.close();
    }
  } finally {
    await remove(home);
  }
}

/** The failure path against the raw autocommit loop of the same count of successful INSERTs (issue 15). */
export function failuresOn(scenario: string, target: (ctx: Context) => DrainTarget): (ctx: Context) => Promise<Row[]> {
  return async (ctx) => {
    const on = target(ctx);
    const n = scaled(ctx, 5_000);
    await on.prepare();
    ctx.log(`${scenario}: ${n} INSERTs, raw ${on.name} autocommit loop`);
    await on.resetTable(TABLE);
    const rawMs = await on.rawLoop(TABLE, n, false);
    check((await on.rowCount(TABLE)) === n, `raw ${on.name} loop inserted ${n} rows`);
    const raw = perSecond(n, rawMs);
    let qb: number | null = null;
    if (on.unavailable === null) {
      ctx.log(`${scenario}: ${n} refused INSERTs (duplicate key), qb.run() settles them to failed/`);
      qb = await qbFailures(ctx, on, n);
    } else {
      ctx.log(`  querybatch side skipped: ${on.unavailable}`);
    }
    await on.dropTable(TABLE);
    return [{
      scenario,
      case: `refused statements settled (failed/, error log, counted), ${n} jobs`,
      querybatch: qb,
      comparison: `${on.perStatementLabel} (successful INSERTs)`,
      other: raw,
      unit: 'stmts/s',
      target: 0.5,
      ...(on.unavailable === null ? {} : { note: `querybatch side not run: ${on.unavailable}` }),
    }];
  };
}
