/**
 * querybatch's benchmarks: each scenario runs querybatch and its comparison side by side
 * in this process, on the same table, and prints throughput and their ratio.
 *
 *   npm run bench                         every scenario, full size
 *   npm run bench -- drain enqueue        a subset
 *   npm run bench -- drain-pg drain-group-pg drain-sqlite drain-group-sqlite   PostgreSQL, SQLite
 *   npm run bench -- coalesce coalesce-pg coalesce-sqlite --rounds=3   merged INSERTs (issue 15)
 *   npm run bench -- --quick              sizes x0.2, depth up to 100,000
 *   npm run bench -- --scale=0.5 --depths=1000,100000 --dir=/path/on/the/disk
 *   npm run bench -- failures failures-pg failures-sqlite   refused statements settled (issue 15)
 *   npm run bench -- drain --rounds=3     each scenario 3 times; the medians count
 *                                         (rounds interleave: every scenario once, then again)
 *   npm run bench -- continuous --rounds=3   start --continuous vs BullMQ: latency at 200 jobs/s
 *
 * Needs MariaDB at 127.0.0.1:3306 (root, no password; database qbbench is created) and
 * Redis at 127.0.0.1:6379 (QB_BENCH_MYSQL, QB_BENCH_DB, QB_BENCH_REDIS_HOST/PORT to change);
 * the -pg scenarios PostgreSQL at 127.0.0.1:5432 (user postgres, trust; database qbbench is
 * created; QB_BENCH_PG to change); the -sqlite ones a file in the scratch directory.
 * Writes bench/results.json.
 */
import { cpus, freemem, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Context, type Row, ensureDatabase, remove } from './common.js';
import { coalesceOn, drainGroupOn, drainOn } from './drain.js';
import { failuresOn } from './failures.js';
import { mariadbTarget } from './targets/mariadb.js';
import { postgresTarget } from './targets/postgres.js';
import { sqliteTarget } from './targets/sqlite.js';
import { enqueue } from './enqueue.js';
import { endToEnd } from './e2e.js';
import { depth } from './depth.js';
import { continuous } from './continuous.js';

const mariadb = () => mariadbTarget;
const postgres = () => postgresTarget;
const sqlite = (ctx: Context) => sqliteTarget(join(ctx.dir, 'sqlite'));

const SCENARIOS: Record<string, (ctx: Context) => Promise<Row[]>> = {
  drain: drainOn('drain', mariadb),
  'drain-group': drainGroupOn('drain-group', mariadb),
  'drain-pg': drainOn('drain-pg', postgres),
  'drain-group-pg': drainGroupOn('drain-group-pg', postgres),
  'drain-sqlite': drainOn('drain-sqlite', sqlite),
  'drain-group-sqlite': drainGroupOn('drain-group-sqlite', sqlite),
  coalesce: coalesceOn('coalesce', mariadb),
  'coalesce-pg': coalesceOn('coalesce-pg', postgres),
  'coalesce-sqlite': coalesceOn('coalesce-sqlite', sqlite),
  failures: failuresOn('failures', mariadb),
  'failures-pg': failuresOn('failures-pg', postgres),
  'failures-sqlite': failuresOn('failures-sqlite', sqlite),
  enqueue,
  e2e: endToEnd,
  depth,
  continuous,
};

function usage(message: string): never {
  console.error(`${message}\nusage: npm run bench -- [${Object.keys(SCENARIOS).join('|')}]... [--quick] [--scale=X] [--depths=N,N] [--dir=DIR]`);
  process.exit(2);
}

function parseArgs(argv: string[]): { names: string[]; scale: number; depths: number[]; dir: string; rounds: number } {
  const names: string[] = [];
  let scale = 1;
  let rounds = 1;
  let depths = [1_000, 100_000, 1_000_000];
  let dir = join(tmpdir(), `querybatch-bench-${process.pid}`);
  for (const arg of argv) {
    if (arg === '--quick') {
      scale = 0.2;
      depths = [1_000, 100_000];
    } else if (arg.startsWith('--scale=')) {
      scale = Number(arg.slice(8));
      if (!(scale > 0)) usage(`Expected --scale to be a number > 0; got ${arg.slice(8)}`);
    } else if (arg.startsWith('--depths=')) {
      depths = arg.slice(9).split(',').map(Number);
      if (depths.some((n) => !Number.isSafeInteger(n) || n <= 0)) usage(`Expected --depths to be whole numbers > 0; got ${arg.slice(9)}`);
    } else if (arg.startsWith('--rounds=')) {
      rounds = Number(arg.slice(9));
      if (!Number.isSafeInteger(rounds) || rounds < 1) usage(`Expected --rounds to be a whole number >= 1; got ${arg.slice(9)}`);
    } else if (arg.startsWith('--dir=')) {
      dir = join(arg.slice(6), `querybatch-bench-${process.pid}`);
    } else if (Object.hasOwn(SCENARIOS, arg)) {
      names.push(arg);
    } else {
      usage(`Unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return { names: names.length ? names : Object.keys(SCENARIOS), scale, depths, dir, rounds };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Several rounds of one scenario folded into one set of rows: the median of each figure, the samples in the note. */
function medianRows(rounds: Row[][]): Row[] {
  if (rounds.length === 1) return rounds[0]!;
  return rounds[0]!.map((row, i) => {
    const pick = (f: (r: Row) => number | null) => {
      const values = rounds.map((r) => r[i]).filter((r): r is Row => r !== undefined).map(f).filter((v): v is number => v !== null);
      return values.length ? { value: median(values), samples: values.map((v) => Math.round(v)).join('/') } : null;
    };
    const qb = pick((r) => r.querybatch);
    const other = pick((r) => r.other);
    const samples = `median of ${rounds.length} rounds: querybatch ${qb?.samples ?? '-'}, other ${other?.samples ?? '-'}`;
    return { ...row, querybatch: qb?.value ?? null, other: other?.value ?? null, note: row.note ? `${row.note}; ${samples}` : samples };
  });
}

function fmt(n: number | null, digits = 0): string {
  return n === null ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function verdict(row: Row): { ratio: number | null; status: string } {
  if (row.querybatch === null || row.other === null || row.other === 0) return { ratio: null, status: row.target === null ? '' : 'n/a' };
  const ratio = row.querybatch / row.other;
  if (row.target === null) return { ratio, status: '' };
  const met = row.lowerIsBetter ? ratio <= row.target : ratio >= row.target;
  return { ratio, status: `${met ? 'met' : 'MISSED'} (${row.lowerIsBetter ? '<=' : '>='} ${row.target.toFixed(2)}x)` };
}

function table(rows: Row[]): string {
  const header = ['scenario', 'case', 'querybatch', 'comparison', 'other', 'unit', 'ratio', 'target'];
  const body = rows.map((row) => {
    const { ratio, status } = verdict(row);
    return [row.scenario, row.case, fmt(row.querybatch, row.unit === 'MB' ? 1 : 0), row.comparison, fmt(row.other), row.unit, ratio === null ? '-' : `${ratio.toFixed(2)}x`, status];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

async function machine(names: string[], dir: string): Promise<Record<string, unknown>> {
  const databases = { ...(await mariadbTarget.describe()) };
  if (names.some((name) => name.endsWith('-pg'))) Object.assign(databases, await postgresTarget.describe());
  if (names.some((name) => name.endsWith('-sqlite'))) Object.assign(databases, await sqliteTarget(join(dir, 'sqlite')).describe());
  let disk = '?';
  try {
    disk = execFileSync('df', ['-hT', tmpdir()], { encoding: 'utf8' }).trim().split('\n').pop() ?? '?';
  } catch {
    // df is not everywhere
  }
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    freeMemoryGb: Math.round(freemem() / 2 ** 30),
    ...databases,
    disk,
  };
}

const args = parseArgs(process.argv.slice(2));
const started = new Date();
await ensureDatabase();
const env = await machine(args.names, args.dir);
console.log(`querybatch bench: ${args.names.join(', ')}; scale ${args.scale}; rounds ${args.rounds}; ${JSON.stringify(env)}`);
const ctx: Context = {
  scale: args.scale,
  depths: args.depths,
  dir: args.dir,
  log: (line) => console.log(`  [${new Date().toISOString().slice(11, 19)}] ${line}`),
};
const rows: Row[] = [];
try {
  // Round by round, every scenario in each: scenarios compared with each other (MariaDB's and
  // PostgreSQL's drains) see the same minutes of a shared machine.
  const rounds = new Map<string, Row[][]>(args.names.map((name) => [name, []]));
  for (let round = 0; round < args.rounds; round++) {
    for (const name of args.names) rounds.get(name)!.push(await SCENARIOS[name]!(ctx));
  }
  for (const name of args.names) rows.push(...medianRows(rounds.get(name)!));
} finally {
  await remove(args.dir);
}
console.log('\n' + table(rows));
for (const row of rows) {
  if (row.note || row.extra) console.log(`- ${row.scenario} / ${row.case}: ${[row.note, row.extra && JSON.stringify(row.extra)].filter(Boolean).join('; ')}`);
}
const out = fileURLToPath(new URL('../../bench/results.json', import.meta.url));
await writeFile(out, JSON.stringify({ startedAt: started.toISOString(), finishedAt: new Date().toISOString(), args: process.argv.slice(2), machine: env, rows: rows.map((r) => ({ ...r, ...verdict(r) })) }, null, 2) + '\n');
console.log(`\nwrote ${out}`);
