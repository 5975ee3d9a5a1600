import { Queue } from 'bullmq';
import { QueryBatch, encodeRecord, type SpoolRecord } from '../src/index.js';
import { BareSpool, DB_URL, type Context, type Row, concurrently, freshDir, insertSql, paramsFor, perSecond, redisClient, redisPersistence, remove, scaled, timed } from './common.js';

const TABLE = 'bench_enqueue';

async function qbEnqueue(ctx: Context, n: number, producers: number, durability: 'fsync' | 'none'): Promise<number> {
  const home = await freshDir(ctx, 'enqueue');
  const qb = new QueryBatch({ home, configFile: false, durability, datasources: { main: { url: DB_URL } } });
  try {
    const sql = insertSql(TABLE);
    await qb.spool(sql, paramsFor(-1)); // creates the home's layout: not part of the figure
    const ms = await timed(() => concurrently(n, producers, (i) => qb.spool(sql, paramsFor(i))));
    return perSecond(n, ms);
  } finally {
    await qb.close();
    await remove(home);
  }
}

/** A spool file's bytes, as large as the ones spool() writes for these statements. */
function sampleFile(i: number): Buffer {
  const record: SpoolRecord = {
    format: 'querybatch/1',
    id: '01JZZZZZZZZZZZZZZZZZZZZZZZ',
    datasource: 'main',
    sql: insertSql(TABLE),
    params: paramsFor(i),
    createdAt: new Date().toISOString(),
    attempts: 0,
  };
  return Buffer.from(encodeRecord(record));
}

async function bareEnqueue(ctx: Context, n: number, producers: number, sync: boolean): Promise<number> {
  const root = await freshDir(ctx, 'bare');
  try {
    const bare = new BareSpool(root, sync);
    await bare.init();
    const bytes = sampleFile(1_000_000);
    const ms = await timed(() => concurrently(n, producers, (i) => bare.write(`${String(i).padStart(10, '0')}.batchsql`, bytes)));
    return perSecond(n, ms);
  } finally {
    await remove(root);
  }
}

async function bullEnqueue(n: number, producers: number): Promise<number> {
  const redis = redisClient();
  const queue = new Queue('qbbench-enqueue', { connection: redis });
  try {
    await queue.waitUntilReady();
    await queue.obliterate({ force: true });
    const sql = insertSql(TABLE);
    await queue.add('insert', { sql, params: paramsFor(-1) });
    const ms = await timed(() => concurrently(n, producers, (i) => queue.add('insert', { sql, params: paramsFor(i) })));
    await queue.obliterate({ force: true });
    return perSecond(n, ms);
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

export async function enqueue(ctx: Context): Promise<Row[]> {
  const rows: Row[] = [];
  const persistence = await redisPersistence();
  for (const producers of [1, 32]) {
    const n = scaled(ctx, producers === 1 ? 3_000 : 10_000);
    ctx.log(`enqueue: ${producers} producer(s), ${n} jobs, fsync`);
    const bareSync = await bareEnqueue(ctx, n, producers, true);
    const qbSync = await qbEnqueue(ctx, n, producers, 'fsync');
    rows.push({
      scenario: 'enqueue',
      case: `fsync, ${producers} producer${producers > 1 ? 's' : ''}, ${n} jobs`,
      querybatch: qbSync,
      comparison: 'bare file protocol loop (disk ceiling)',
      other: bareSync,
      unit: 'jobs/s',
      target: producers === 32 ? 0.9 : null,
    });
    ctx.log(`enqueue: ${producers} producer(s), ${n} jobs, durability none`);
    const bareNone = await bareEnqueue(ctx, n, producers, false);
    const qbNone = await qbEnqueue(ctx, n, producers, 'none');
    const bull = await bullEnqueue(n, producers);
    rows.push({
      scenario: 'enqueue',
      case: `durability none, ${producers} producer${producers > 1 ? 's' : ''}, ${n} jobs`,
      querybatch: qbNone,
      comparison: 'bare file protocol loop, no fsync',
      other: bareNone,
      unit: 'jobs/s',
      target: null,
    });
    rows.push({
      scenario: 'enqueue',
      case: `durability none, ${producers} producer${producers > 1 ? 's' : ''}, ${n} jobs`,
      querybatch: qbNone,
      comparison: `BullMQ queue.add() (local Redis; ${persistence})`,
      other: bull,
      unit: 'jobs/s',
      target: producers === 32 ? 1.0 : null,
    });
  }
  return rows;
}
