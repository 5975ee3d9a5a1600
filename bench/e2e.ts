import { Queue, Worker } from 'bullmq';
import { QueryBatch } from '../src/index.js';
import { DB_URL, type Context, type Row, check, concurrently, connect, dropTable, freshDir, insertSql, paramsFor, perSecond, redisClient, redisPersistence, remove, resetTable, rowCount, scaled, timed } from './common.js';

const TABLE = 'bench_e2e';
const PRODUCERS = 32;

/** querybatch with default settings (fsync): spool n, then one qb.run() drains them. */
async function qbEndToEnd(ctx: Context, n: number): Promise<{ rate: number; spoolMs: number; runMs: number }> {
  await resetTable(TABLE);
  const home = await freshDir(ctx, 'e2e');
  const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url: DB_URL } } });
  try {
    const sql = insertSql(TABLE);
    let spoolMs = 0;
    let runMs = 0;
    const ms = await timed(async () => {
      spoolMs = await timed(() => concurrently(n, PRODUCERS, (i) => qb.spool(sql, paramsFor(i))));
      runMs = await timed(async () => check((await qb.run()).success === n, `qb.run() ran ${n}`));
    });
    check((await rowCount(TABLE)) === n, `querybatch inserted ${n} rows`);
    return { rate: perSecond(n, ms), spoolMs, runMs };
  } finally {
    await qb.close();
    await remove(home);
  }
}

/** BullMQ: add n jobs while a concurrency-1 worker runs each INSERT through mysql2 (autocommit). */
async function bullEndToEnd(n: number): Promise<{ rate: number; redisPersistence: string }> {
  await resetTable(TABLE);
  const name = 'qbbench-e2e';
  const queueRedis = redisClient();
  const workerRedis = redisClient();
  const queue = new Queue(name, { connection: queueRedis, defaultJobOptions: { removeOnComplete: true } });
  const conn = await connect();
  let worker: Worker | undefined;
  try {
    await queue.waitUntilReady();
    await queue.obliterate({ force: true });
    const persistence = await redisPersistence();
    let done = 0;
    let failed = 0;
    let finish!: () => void;
    const allDone = new Promise<void>((resolve) => {
      finish = resolve;
    });
    worker = new Worker(name, async (job) => {
      const data = job.data as { sql: string; params: [number, string] };
      await conn.execute(data.sql, data.params);
    }, { connection: workerRedis, concurrency: 1, autorun: true });
    worker.on('completed', () => {
      if (++done === n) finish();
    });
    worker.on('failed', () => {
      failed++;
    });
    await worker.waitUntilReady();
    const sql = insertSql(TABLE);
    const ms = await timed(async () => {
      await concurrently(n, PRODUCERS, (i) => queue.add('insert', { sql, params: paramsFor(i) }));
      await allDone;
    });
    check(failed === 0, `BullMQ jobs all succeeded (${failed} failed)`);
    check((await rowCount(TABLE)) === n, `BullMQ worker inserted ${n} rows`);
    return { rate: perSecond(n, ms), redisPersistence: persistence };
  } finally {
    await worker?.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    queueRedis.disconnect();
    workerRedis.disconnect();
    await conn.end();
  }
}

export async function endToEnd(ctx: Context): Promise<Row[]> {
  const n = scaled(ctx, 10_000);
  ctx.log(`e2e: ${n} jobs, BullMQ add + concurrency-1 worker`);
  const bull = await bullEndToEnd(n);
  ctx.log(`e2e: ${n} jobs, querybatch spool then run`);
  const qb = await qbEndToEnd(ctx, n);
  await dropTable(TABLE);
  return [{
    scenario: 'e2e',
    case: `${n} INSERTs, ${PRODUCERS} producers, first enqueue to last commit`,
    querybatch: qb.rate,
    comparison: `BullMQ add + concurrency-1 mysql2 worker (Redis: ${bull.redisPersistence})`,
    other: bull.rate,
    unit: 'jobs/s',
    target: 2,
    extra: { qbSpoolMs: Math.round(qb.spoolMs), qbRunMs: Math.round(qb.runMs) },
  }];
}
