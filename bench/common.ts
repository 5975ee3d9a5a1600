import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';

/** Where the benchmarks write: a database of their own on the local MariaDB, Redis, and a scratch directory. */
export const DB_NAME = process.env.QB_BENCH_DB ?? 'qbbench';
export const SERVER_URL = process.env.QB_BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306';
export const DB_URL = `${SERVER_URL}/${DB_NAME}`;
export const REDIS = { host: process.env.QB_BENCH_REDIS_HOST ?? '127.0.0.1', port: Number(process.env.QB_BENCH_REDIS_PORT ?? 6379) };

/** One line of the results table: querybatch's figure next to its comparison's. */
export interface Row {
  readonly scenario: string;
  readonly case: string;
  /** querybatch's throughput (per second), or null when that side is not implemented. */
  readonly querybatch: number | null;
  readonly comparison: string;
  readonly other: number | null;
  readonly unit: string;
  /** The ratio querybatch/other the target asks for (met when ratio >= target). */
  readonly target: number | null;
  readonly note?: string;
  /** For budgets (memory): met when querybatch/other <= target. */
  readonly lowerIsBetter?: boolean;
  readonly extra?: Record<string, unknown>;
}

export interface Context {
  /** Multiplies every size (1 = the full run). */
  readonly scale: number;
  /** Depth sizes to measure. */
  readonly depths: readonly number[];
  /** Scratch directory on the disk under test. */
  readonly dir: string;
  readonly log: (line: string) => void;
}

export function scaled(ctx: Context, n: number, min = 100): number {
  return Math.max(min, Math.round(n * ctx.scale));
}

export async function ensureDatabase(): Promise<void> {
  const conn = await mysql.createConnection(SERVER_URL);
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${DB_NAME}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await conn.end();
  }
}

export async function connect(): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: DB_URL, timezone: 'Z' });
}

/** The same table for both sides of a scenario: an InnoDB table with an auto-increment key. */
export async function resetTable(table: string): Promise<void> {
  const conn = await connect();
  try {
    await conn.query(`DROP TABLE IF EXISTS \`${table}\``);
    await conn.query(`CREATE TABLE \`${table}\` (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL, b VARCHAR(64) NOT NULL) ENGINE=InnoDB`);
  } finally {
    await conn.end();
  }
}

export async function dropTable(table: string): Promise<void> {
  const conn = await connect();
  try {
    await conn.query(`DROP TABLE IF EXISTS \`${table}\``);
  } finally {
    await conn.end();
  }
}

export async function rowCount(table: string): Promise<number> {
  const conn = await connect();
  try {
    const [rows] = await conn.query(`SELECT COUNT(*) AS n FROM \`${table}\``);
    return Number((rows as Array<{ n: unknown }>)[0]?.n);
  } finally {
    await conn.end();
  }
}

/** The statement every scenario runs, and its params for job i. */
export function insertSql(table: string): string {
  return `INSERT INTO \`${table}\` (a, b) VALUES (?, ?)`;
}
export function paramsFor(i: number): [number, string] {
  return [i, `row-${i}`];
}

export async function freshDir(ctx: Context, name: string): Promise<string> {
  await mkdir(ctx.dir, { recursive: true });
  return mkdtemp(join(ctx.dir, `${name}-`));
}

export async function remove(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

/** Runs `task(0..total-1)` with `producers` concurrent loops, each taking the next index. */
export async function concurrently(total: number, producers: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(producers, total) }, loop));
}

/** Milliseconds `fn` takes. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export function perSecond(n: number, ms: number): number {
  return ms > 0 ? (n * 1000) / ms : 0;
}

export function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`benchmark check failed: ${message}`);
}

/**
 * The disk's ceiling for the spool's file protocol, done by hand with nothing else: temp
 * file (O_EXCL, 0600), write, fsync, close, rename into one directory, one shared directory
 * fsync per group of concurrent writers.
 */
export class BareSpool {
  readonly #tmp: string;
  readonly #dir: string;
  readonly #sync: boolean;
  #inFlight = false;
  #next: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;

  constructor(root: string, sync: boolean) {
    this.#tmp = join(root, '.tmp');
    this.#dir = join(root, 'jobs');
    this.#sync = sync;
  }

  async init(): Promise<void> {
    await mkdir(this.#tmp, { recursive: true });
    await mkdir(this.#dir, { recursive: true });
  }

  async write(name: string, bytes: Buffer): Promise<void> {
    const tmp = join(this.#tmp, `${name}.tmp`);
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.write(bytes);
      if (this.#sync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(this.#dir, name));
    if (this.#sync) await this.#syncDir();
  }

  #syncDir(): Promise<void> {
    if (!this.#next) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#next = { promise, resolve, reject };
    }
    const { promise } = this.#next;
    if (!this.#inFlight) void this.#flush();
    return promise;
  }

  async #flush(): Promise<void> {
    this.#inFlight = true;
    while (this.#next) {
      const batch = this.#next;
      this.#next = null;
      try {
        const handle = await open(this.#dir, constants.O_RDONLY | constants.O_DIRECTORY);
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
        batch.resolve();
      } catch (error) {
        batch.reject(error);
      }
    }
    this.#inFlight = false;
  }
}

/** Redis's persistence settings (CONFIG GET save / appendonly), asked over a bare socket. */
export async function redisPersistence(): Promise<string> {
  const { createConnection } = await import('node:net');
  const ask = (command: string[]) => new Promise<string>((resolve, reject) => {
    const socket = createConnection(REDIS);
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('utf8');
      const lines = text.split('\r\n');
      // *2 $n name $n value: the value is the fifth line
      if (lines.length >= 6) {
        socket.end();
        resolve(lines[4] ?? '');
      }
    });
    socket.on('error', reject);
    socket.write(`*${command.length}\r\n${command.map((c) => `$${Buffer.byteLength(c)}\r\n${c}\r\n`).join('')}`);
  });
  const save = await ask(['CONFIG', 'GET', 'save']);
  const aof = await ask(['CONFIG', 'GET', 'appendonly']);
  const onDisk = save !== '' || aof !== 'no';
  return `save="${save}", appendonly=${aof}: ${onDisk ? 'Redis persists to disk' : 'this Redis keeps nothing on disk'}`;
}

/** A Redis client for BullMQ (which, as an ES module, is handed a constructed ioredis client). */
export function redisClient(): Redis {
  return new Redis({ ...REDIS, maxRetriesPerRequest: null });
}

/**
 * The coalesce scenario's bulk load: rows paramsFor(0..n-1) as multi-row INSERTs of `perStatement`
 * rows into `table` (quoted as given), in one transaction (`begin`, then COMMIT). Written to a
 * file before the clock starts. paramsFor's strings need no escaping.
 */
export function bulkInserts(table: string, n: number, perStatement: number, begin: string): string {
  const out: string[] = [`${begin};`];
  for (let from = 0; from < n; from += perStatement) {
    const rows: string[] = [];
    for (let i = from; i < Math.min(n, from + perStatement); i++) {
      const [a, b] = paramsFor(i);
      rows.push(`(${a}, '${b}')`);
    }
    out.push(`INSERT INTO ${table} (a, b) VALUES ${rows.join(', ')};`);
  }
  out.push('COMMIT;');
  return out.join('\n') + '\n';
}

/** Writes `sql` to `dir`/bulk.sql, then runs `command args` with it on its stdin; milliseconds until it exits (throws on a non-zero exit). */
export async function timedClient(command: string, args: readonly string[], dir: string, sql: string): Promise<number> {
  const { spawn } = await import('node:child_process');
  const { openSync, closeSync, writeFileSync, mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'bulk.sql');
  writeFileSync(file, sql);
  const fd = openSync(file, 'r');
  try {
    return await timed(() => new Promise<void>((resolve, reject) => {
      const child = spawn(command, args, { stdio: [fd, 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${stderr}`))));
    }));
  } finally {
    closeSync(fd);
  }
}
