import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { QueryBatch } from '../src/index.js';
import { DB_NAME, DB_URL, type Context, type Row, check, connect, dropTable, freshDir, redisClient, redisPersistence, remove, rowCount } from './common.js';
import { createContinuousTableSql } from './continuous-sql.js';

/**
 * Continuous mode (issue 15): spool-to-commit latency at a steady 200 jobs/s offered by
 * another process, against BullMQ's add-to-commit with a concurrency-1 worker running the same
 * INSERT. Producers, poller: bench/continuous-child.ts. querybatch runs with its defaults
 * (fsync durability, the ledger's group commit) and `schedule.continuous`, its cron yearly.
 */
const TABLE = 'continuous_bench';
/** Jobs offered per second (QB_BENCH_CONTINUOUS_RATE to change). */
const RATE = Number(process.env.QB_BENCH_CONTINUOUS_RATE ?? 200);
const CHILD = fileURLToPath(new URL('./continuous-child.js', import.meta.url));

/** Runs a child of bench/continuous-child.ts; resolves with its stdout. */
function child(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`continuous-child ${args[0]} exited ${code}: ${err}`))));
  });
}

/** Starts the poller, then the producer; [a, latency ms] of jobs after the warm-up (commit order), and the producer's output. */
async function measure(producer: readonly string[], n: number, warmup: number): Promise<{ seen: Array<[number, number]>; produced: string }> {
  const polled = child(['poll', DB_URL, TABLE, String(n), String(warmup)]);
  const produced = await child(producer);
  return { seen: JSON.parse((await polled).trim()) as Array<[number, number]>, produced };
}

/** Where a job's spool-to-commit time went (ms, Date.now() in the producer, the daemon and the poller). */
interface Stages {
  /** spool() began → it resolved (the producer's fsyncs). */
  readonly spool: number;
  /** spool() resolved → the run that committed the job began (negative: the run began before spool() returned). */
  readonly wait: number;
  /** That run began → the job's commit was reported (succeeded event). */
  readonly run: number;
  /** Committed → the poller saw the row. */
  readonly poll: number;
}

function meanStages(stages: readonly Stages[]): Record<keyof Stages, number> {
  const mean = (k: keyof Stages) => Math.round((stages.reduce((t, s) => t + s[k], 0) / Math.max(1, stages.length)) * 10) / 10;
  return { spool: mean('spool'), wait: mean('wait'), run: mean('run'), poll: mean('poll') };
}

async function resetContinuousTable(): Promise<void> {
  const conn = await connect();
  try {
    await conn.query(`DROP TABLE IF EXISTS \`${TABLE}\``);
    await conn.query(createContinuousTableSql(TABLE));
  } finally {
    await conn.end();
  }
}

async function qbSide(ctx: Context, n: number, warmup: number): Promise<number[]> {
  await resetContinuousTable();
  const home = await freshDir(ctx, 'continuous');
  const errors: unknown[] = [];
  const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url: DB_URL } }, schedule: { continuous: true, cron: '0 0 1 1 *', startDelayMs: 0, watch: false } });
  // Per job: when the run that committed it began, and when its commit was reported.
  let runStart = 0;
  const committed = new Map<string, { runStart: number; at: number }>();
  qb.on('run:start', () => (runStart = Date.now()));
  qb.on('succeeded', (outcome) => committed.set(outcome.id, { runStart, at: Date.now() }));
  try {
    await qb.start({ onError: (e) => errors.push(e) });
    const { seen, produced } = await measure(['produce-qb', home, DB_URL, TABLE, String(RATE), String(n)], n, warmup);
    check(errors.length === 0, `no run errors (${String(errors[0])})`);
    check((await rowCount(TABLE)) === n, `querybatch inserted ${n} rows`);
    const spooled = new Map(produced.trim().split('\n').map((line) => {
      const [a, id, start, end] = line.split(' ');
      return [Number(a), { id: id!, start: Number(start), end: Number(end) }] as const;
    }));
    const latencies = seen.map(([, ms]) => ms);
    const p99 = percentile(latencies, 99);
    const all: Stages[] = [];
    const tail: Stages[] = [];
    for (const [a, ms] of seen) {
      const job = spooled.get(a);
      const commit = job && committed.get(job.id);
      if (!job || !commit) continue;
      const stages = { spool: job.end - job.start, wait: commit.runStart - job.end, run: commit.at - commit.runStart, poll: job.start + ms - commit.at };
      all.push(stages);
      if (ms >= p99) tail.push(stages);
    }
    ctx.log(`continuous: querybatch stages, mean ms: all ${JSON.stringify(meanStages(all))}; the ${tail.length} jobs at or over p99 (${p99} ms) ${JSON.stringify(meanStages(tail))}`);
    return latencies;
  } finally {
    await qb.close();
    await remove(home);
  }
}

async function bullSide(n: number, warmup: number): Promise<number[]> {
  await resetContinuousTable();
  const name = `continuous-${DB_NAME}`;
  const queueRedis = redisClient();
  const workerRedis = redisClient();
  const queue = new Queue(name, { connection: queueRedis });
  const conn = await connect();
  let worker: Worker | undefined;
  try {
    await queue.waitUntilReady();
    await queue.obliterate({ force: true });
    let failed = 0;
    worker = new Worker(name, async (job) => {
      const data = job.data as { sql: string; params: [number, number] };
      await conn.execute(data.sql, data.params);
    }, { connection: workerRedis, concurrency: 1, autorun: true });
    worker.on('failed', () => failed++);
    await worker.waitUntilReady();
    const latencies = (await measure(['produce-bull', name, TABLE, String(RATE), String(n)], n, warmup)).seen.map(([, ms]) => ms);
    check(failed === 0, `BullMQ jobs all succeeded (${failed} failed)`);
    check((await rowCount(TABLE)) === n, `BullMQ worker inserted ${n} rows`);
    return latencies;
  } finally {
    await worker?.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    queueRedis.disconnect();
    workerRedis.disconnect();
    await conn.end();
  }
}

/** The p-th percentile (nearest rank) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export async function continuous(ctx: Context): Promise<Row[]> {
  const seconds = Math.max(5, Math.round(20 * ctx.scale));
  const n = RATE * seconds;
  const warmup = RATE; // the first second: connections, JIT
  ctx.log(`continuous: BullMQ, ${n} jobs at ${RATE}/s from a producer process, concurrency-1 worker`);
  const bull = await bullSide(n, warmup);
  ctx.log(`continuous: querybatch start --continuous, ${n} jobs at ${RATE}/s from a producer process`);
  const qb = await qbSide(ctx, n, warmup);
  await dropTable(TABLE);
  const persistence = await redisPersistence();
  const comparison = `BullMQ add-to-commit, concurrency-1 mysql2 worker (Redis: ${persistence})`;
  const what = `${RATE} INSERTs/s for ${seconds} s from another process, spool-to-commit`;
  // The last job's latency: one that grows to seconds says the side could not keep up with the rate.
  const extra = { measured: qb.length, qbMax: Math.max(...qb), qbLast: qb.at(-1), bullMax: Math.max(...bull), bullLast: bull.at(-1) };
  return [
    { scenario: 'continuous', case: `${what} p50`, querybatch: percentile(qb, 50), comparison, other: percentile(bull, 50), unit: 'ms', target: null, lowerIsBetter: true },
    { scenario: 'continuous', case: `${what} p99`, querybatch: percentile(qb, 99), comparison, other: percentile(bull, 99), unit: 'ms', target: 2, lowerIsBetter: true, extra },
  ];
}
