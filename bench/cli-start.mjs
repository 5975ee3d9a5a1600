// How long the CLI takes to start and do a small command, against a bare `node -e 0` (issue 15):
// `querybatch status` and `querybatch spool "INSERT …"` in a home whose datasource is an
// embedded SQLite database (the sample config `querybatch init` writes) and in one whose
// datasource is MySQL, and `querybatch --help`. Neither status nor spool connects to a
// database, so no server needs to be up. Each round runs every case once (interleaved: a
// busy machine slows them alike); the medians count. Target: each <= 2x `node -e 0` (wall
// time; the CPU time, user + system, is printed beside it: on a busy machine it varies far
// less. Each run reports its own, process.cpuUsage() at exit, from a preloaded CommonJS file
// (`node -r`, for `node -e 0` too), in microseconds where GNU time gave 10 ms steps).
// Usage: npm run bench:cli [-- --runs=N (default 11, >= 5)] [--cli=path/to/dist/cli.js]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { URL, fileURLToPath } from 'node:url';

const TARGET = 2;
const args = Object.fromEntries(process.argv.slice(2).map((arg) => {
  const match = /^--(runs|cli)=(.+)$/.exec(arg);
  if (!match) {
    console.error(`Expected --runs=N or --cli=PATH; got ${JSON.stringify(arg)}`);
    process.exit(2);
  }
  return [match[1], match[2]];
}));
const runs = Number(args.runs ?? 11);
if (!Number.isSafeInteger(runs) || runs < 5) {
  console.error(`Expected --runs to be a whole number >= 5; got ${JSON.stringify(args.runs)}`);
  process.exit(2);
}
const cli = resolve(args.cli ?? fileURLToPath(new URL('../dist/cli.js', import.meta.url)));
const node = process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'querybatch-bench-cli-'));
const env = { ...process.env };
for (const key of Object.keys(env)) if (key.startsWith('QUERYBATCH_')) delete env[key];

// Each run writes its CPU time (user + system, microseconds) to cpuFile when it exits.
const cpuFile = join(dir, 'cpu');
const preload = join(dir, 'cpu.cjs');
writeFileSync(preload, "process.on('exit', () => { const u = process.cpuUsage(); require('node:fs').writeFileSync(process.env.QB_BENCH_CPU_FILE, String(u.user + u.system)); });\n");
env.QB_BENCH_CPU_FILE = cpuFile;

/** Runs `argv` with node; throws with its output when it fails. Returns the wall time and the CPU time in ms. */
function time(argv) {
  rmSync(cpuFile, { force: true });
  const started = process.hrtime.bigint();
  const result = spawnSync(node, ['-r', preload, ...argv], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`Expected \`node ${argv.join(' ')}\` to exit 0; got ${result.status ?? result.signal}: ${result.stderr.trim()}`);
  return { wall: ms, cpu: Number(readFileSync(cpuFile, 'utf8')) / 1000 };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

try {
  const sqliteHome = join(dir, 'sqlite');
  const mysqlHome = join(dir, 'mysql');
  time([cli, '--home', sqliteHome, 'init']);
  time([cli, '--home', mysqlHome, 'init', '--url', 'mysql://qb@127.0.0.1:3306/qbbench']);
  const cases = [
    ['node -e 0', ['-e', '0']],
    ['status (SQLite home)', [cli, '--home', sqliteHome, 'status']],
    ['status (MySQL home)', [cli, '--home', mysqlHome, 'status']],
    ['spool (SQLite home)', [cli, '--home', sqliteHome, 'spool', 'INSERT INTO t (a) VALUES (1)']],
    ['spool (MySQL home)', [cli, '--home', mysqlHome, 'spool', 'INSERT INTO t (a) VALUES (1)']],
    ['--help', [cli, '--help']],
  ];
  for (const [, argv] of cases) time(argv); // warm the file cache
  const samples = cases.map(() => []);
  for (let round = 0; round < runs; round++) {
    cases.forEach(([, argv], i) => samples[i].push(time(argv)));
  }
  const wall = samples.map((runs) => median(runs.map((r) => r.wall)));
  const cpu = samples.map((runs) => median(runs.map((r) => r.cpu)));
  console.log(`querybatch CLI start: ${cli}; node ${process.version}; median of ${runs} runs each; target: wall time <= ${TARGET}x node -e 0\n`);
  console.log('| case                 | wall ms | x node -e 0 | target        | CPU ms | x node -e 0 | wall samples ms');
  console.log('|----------------------|---------|-------------|---------------|--------|-------------|----------------');
  cases.forEach(([name], i) => {
    const ratio = wall[i] / wall[0];
    const verdict = i === 0 ? '' : `${ratio <= TARGET ? 'met' : 'MISSED'} (<= ${TARGET}x)`;
    const cpuText = cpu[i].toFixed(1);
    const cpuRatio = `${(cpu[i] / cpu[0]).toFixed(2)}x`;
    console.log(`| ${name.padEnd(20)} | ${wall[i].toFixed(0).padStart(7)} | ${ratio.toFixed(2).padStart(10)}x | ${verdict.padEnd(13)} | ${cpuText.padStart(6)} | ${cpuRatio.padStart(11)} | ${samples[i].map((r) => r.wall.toFixed(0)).join(' ')}`);
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
