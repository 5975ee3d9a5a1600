/**
 * The continuous scenario's child processes (bench/continuous.ts), one role each:
 *
 *   node dist-bench/bench/continuous-child.js produce-qb <home> <url> <table> <rate> <n>
 *   node dist-bench/bench/continuous-child.js produce-bull <queue> <table> <rate> <n>
 *   node dist-bench/bench/continuous-child.js poll <url> <table> <n> <warmup>
 *
 * A producer offers n jobs at a steady rate (open loop: job i is due at start + i/rate,
 * whether or not the ones before have returned), each an INSERT carrying Date.now() taken
 * just before spool() / queue.add(). The poller reads new rows every POLL_MS and stamps each
 * with Date.now() when it first sees it, i.e. once it has committed; it prints [a, seen − spooled
 * (ms)] of jobs warmup.. in commit order as one JSON line. produce-qb prints, per job, `a id
 * start end` (Date.now() before spool() and once it resolved): the stage breakdown's input. Both sides use the same poller, so
 * its resolution (a few ms) is added to both alike, and the same clock (the host's wall
 * clock, read in two processes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { Queue } from 'bullmq';
import { QueryBatch } from '../src/index.js';
import { insertContinuousSql } from './continuous-sql.js';
import { redisClient } from './common.js';

const POLL_MS = 2;

/** Calls `offer(i)` for i in 0..n-1 at `rate` per second (open loop); resolves once all have settled. */
async function steady(rate: number, n: number, offer: (i: number) => Promise<unknown>): Promise<void> {
  const start = performance.now();
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(offer(i));
  }
  await Promise.all(pending);
}

async function produceQb(home: string, url: string, table: string, rate: number, n: number): Promise<void> {
  // Default durability (fsync) and the ledger on: what a user gets.
  const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url } } });
  const sql = insertContinuousSql(table);
  const lines: string[] = [];
  await steady(rate, n, async (i) => {
    const start = Date.now();
    const id = await qb.spool(sql, [i, start]);
    lines.push(`${i} ${id} ${start} ${Date.now()}`);
  });
  await qb.close();
  process.stdout.write(lines.join('\n') + '\n');
}

async function produceBull(name: string, table: string, rate: number, n: number): Promise<void> {
  const connection = redisClient();
  const queue = new Queue(name, { connection, defaultJobOptions: { removeOnComplete: true } });
  await queue.waitUntilReady();
  const sql = insertContinuousSql(table);
  await steady(rate, n, (i) => queue.add('insert', { sql, params: [i, Date.now()] }));
  await queue.close();
  connection.disconnect();
}

async function poll(url: string, table: string, n: number, warmup: number): Promise<void> {
  const conn = await mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: false });
  /** In commit order: the last one is the last job to commit. */
  const latencies: Array<[number, number]> = [];
  let last = 0;
  let seen = 0;
  while (seen < n) {
    const [rows] = await conn.query(`SELECT id, a, spooled_ms FROM \`${table}\` WHERE id > ? ORDER BY id`, [last]);
    const now = Date.now();
    for (const row of rows as Array<{ id: number; a: number; spooled_ms: number }>) {
      last = Number(row.id);
      seen++;
      if (row.a >= warmup) latencies.push([Number(row.a), now - Number(row.spooled_ms)]);
    }
    await sleep(POLL_MS);
  }
  await conn.end();
  process.stdout.write(JSON.stringify(latencies) + '\n');
}

const [role, ...args] = process.argv.slice(2);
if (role === 'produce-qb') await produceQb(args[0]!, args[1]!, args[2]!, Number(args[3]), Number(args[4]));
else if (role === 'produce-bull') await produceBull(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
else if (role === 'poll') await poll(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
else {
  console.error('usage: continuous-child produce-qb|produce-bull|poll …');
  process.exit(2);
}
