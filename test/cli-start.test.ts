import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI, runCli } from './helpers.js';

/**
 * Issue 15: `querybatch status` and `spool` load none of the heavy modules (database clients,
 * logging, watching, scheduling, the dashboard's server, the help renderer) that only other
 * commands need; nor does `import 'querybatch'`. Nor do they load another command's
 * implementation, or the dialect modules (lexers, splitters, ledger SQL) of a database: status
 * none, spool only its datasource's (a script's splitter; with the ledger, a statement's traits). What a process loads is recorded by a
 * module-loading hook (test/fixtures/module-log.mjs), not timed: the figures are in
 * bench/cli-start.mjs. The bin is a bundle (scripts/build-cli.mjs): a file of it that the hook
 * sees stands for every source module in it (dist/bin/modules.json lists them), named as tsc
 * would have built it (src/ops/init.ts as dist/ops/init.js), so a module bundled into a file
 * that status loads counts as loaded, whether or not its code runs.
 */

const HEAVY = ['mysql2', 'pg', 'better-sqlite3', 'winston', 'chokidar', 'node-cron', 'hono', '@hono/node-server', 'prom-client', 'fs-extra', 'cliui', 'string-width'];
/** Other commands' implementations (under dist/): loaded by their command only. */
const IMPLEMENTATIONS = ['cli/progress.js', 'ops/init.js', 'ops/log-reader.js', 'http/server.js', 'daemon/schedule.js', 'run/run-batch.js', 'ops/failed-files.js', 'ops/results.js', 'ops/cancel.js', 'ops/job-status.js'];
const DIALECTS = ['sqlite', 'mysql', 'postgres'] as const;
const HOOK = join(import.meta.dirname, 'fixtures', 'module-log.mjs');
const ROOT = join(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const DIST_INDEX = join(DIST, 'index.js');

/** The bundle's files (relative to dist/) and the source modules in each (relative to the repository), as the build wrote them. */
const BUNDLE = JSON.parse(readFileSync(join(DIST, 'bin', 'modules.json'), 'utf8')) as Record<string, string[]>;

/** `modules` (URLs or paths) with each file of the bundle followed by the modules in it: src/x/y.ts as dist/x/y.js, the bundled packages' files as under node_modules/. */
function unbundled(modules: readonly string[]): string[] {
  const sources = new Map(Object.entries(BUNDLE).map(([file, inputs]) => [pathToFileURL(join(DIST, file)).href, inputs]));
  return modules.flatMap((m) => {
    const inputs = sources.get(m.startsWith('file:') ? m : pathToFileURL(m).href);
    if (inputs === undefined) return [m];
    return [m, ...inputs.map((input) => join(ROOT, input.replace(/^src\/(.*)\.ts$/, 'dist/$1.js')))];
  });
}

let dir: string;
const homes: Record<string, string> = {};

/** Runs `node --import module-log.mjs ...args`; resolves with its exit code, output and every module it loaded. */
async function loaded(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; modules: string[] }> {
  const log = join(dir, `modules-${Math.random().toString(36).slice(2)}.log`);
  const child = spawn(process.execPath, ['--import', HOOK, ...args], { env: { ...process.env, QB_MODULE_LOG: log }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const modules = unbundled((await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean));
  return { code, stdout, stderr, modules };
}

/** The heavy packages among `modules` (a path or URL under node_modules/<package>/). */
function heavyAmong(modules: readonly string[]): string[] {
  return [...new Set(HEAVY.filter((name) => modules.some((m) => m.includes(`/node_modules/${name}/`))))];
}

/** Which of IMPLEMENTATIONS are among `modules`. */
function implementationsAmong(modules: readonly string[]): string[] {
  return IMPLEMENTATIONS.filter((name) => modules.some((m) => m.endsWith(`/dist/${name}`)));
}

/** The dialects whose modules beyond the URL check (db/<dialect>/scheme.js, options.js) are among `modules`. */
function dialectsAmong(modules: readonly string[]): string[] {
  return DIALECTS.filter((dialect) => modules.some((m) => {
    const match = new RegExp(`/dist/db/${dialect}/([^/]+)$`).exec(m);
    return match !== null && match[1] !== 'scheme.js' && match[1] !== 'options.js';
  }));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qb-clistart-'));
  const urls = { sqlite: 'sqlite:querybatch.db', mysql: 'mysql://clistart@127.0.0.1:3306/clistart', postgres: 'postgres://clistart@127.0.0.1:5432/clistart' };
  for (const [dialect, url] of Object.entries(urls)) {
    homes[dialect] = join(dir, dialect);
    const init = await runCli(['--home', homes[dialect], 'init', '--url', url]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CLI start (issue 15): what a command loads', () => {
  it('the hook sees what a process loads: --help renders with cliui and string-width, a run of a job loads better-sqlite3 and winston', async () => {
    // The test below would pass if the hook saw nothing: here it must see heavy modules load.
    const help = await loaded([CLI, '--help']);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toContain('querybatch [--home DIR]');
    expect(heavyAmong(help.modules)).toEqual(expect.arrayContaining(['cliui', 'string-width']));

    const home = join(dir, 'run-sqlite');
    expect((await runCli(['--home', home, 'init'])).code).toBe(0);
    expect((await runCli(['--home', home, 'spool', 'CREATE TABLE clistart_t (a INTEGER)'])).code).toBe(0);
    const run = await loaded([CLI, '--home', home, 'run']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(heavyAmong(run.modules)).toEqual(expect.arrayContaining(['better-sqlite3', 'winston']));
  });

  for (const dialect of ['sqlite', 'mysql', 'postgres']) {
    it(`status and spool in a ${dialect} home load none of ${HEAVY.join(', ')}, no other command's implementation, and no dialect but spool's own`, async () => {
      const home = homes[dialect]!;
      for (const args of [['status'], ['status', '--json'], ['spool', 'INSERT INTO clistart_t (a) VALUES (1)'], ['spool', '--json', 'INSERT INTO clistart_t (a) VALUES (?)', '--param', '2']]) {
        const result = await loaded([CLI, '--home', home, ...args]);
        expect(result.stderr, args.join(' ')).toBe('');
        expect(result.code, args.join(' ')).toBe(0);
        expect(result.modules.some((m) => m.endsWith('/dist/cli/main.js')), 'the hook logged the CLI itself').toBe(true);
        expect(heavyAmong(result.modules), `querybatch ${args.join(' ')}`).toEqual([]);
        expect(implementationsAmong(result.modules), `querybatch ${args.join(' ')}: other commands' implementations`).toEqual([]);
        // status needs no dialect; spool needs its datasource's (the ledger, on by default, asks
        // whether a statement can share a transaction), and no other.
        expect(dialectsAmong(result.modules), `querybatch ${args.join(' ')}: dialect modules`).toEqual(args[0] === 'spool' ? [dialect] : []);
      }
      // The two spooled jobs are there.
      const status = await runCli(['--home', home, 'status', '--json']);
      expect(JSON.parse(status.stdout)).toMatchObject({ pendingTotal: 2 });
    });
  }

  it('a script spooled to a datasource without the ledger loads its dialect (its splitter), and no other', async () => {
    const home = join(dir, 'script-postgres');
    expect((await runCli(['--home', home, 'init', '--url', 'postgres://clistart@127.0.0.1:5432/clistart'])).code).toBe(0);
    const config = join(home, 'querybatch.config.json');
    await writeFile(config, JSON.stringify({ datasources: { main: { url: 'postgres://clistart@127.0.0.1:5432/clistart', ledger: false } } }));
    const plain = await loaded([CLI, '--home', home, 'spool', 'INSERT INTO clistart_t (a) VALUES (1)']);
    expect(plain.stderr).toBe('');
    expect(dialectsAmong(plain.modules), 'no ledger, one statement: no dialect').toEqual([]);
    const script = join(dir, 'script.sql');
    await writeFile(script, 'INSERT INTO clistart_t (a) VALUES (1);\nINSERT INTO clistart_t (a) VALUES (2);\n');
    const result = await loaded([CLI, '--home', home, 'spool', '--file', script]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(dialectsAmong(result.modules)).toEqual(['postgres']);
    expect(heavyAmong(result.modules)).toEqual([]);
  });

  it('each command\'s implementation loads when that command runs (init, logs --since)', async () => {
    // The hook sees the implementations that status and spool must not load.
    const home = join(dir, 'impl');
    const init = await loaded([CLI, '--home', home, 'init']);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(implementationsAmong(init.modules)).toEqual(['ops/init.js']);
    const logs = await loaded([CLI, '--home', home, 'logs', '--since', '1h']);
    expect(logs.stderr).toBe('');
    expect(logs.code).toBe(0);
    expect(implementationsAmong(logs.modules)).toContain('ops/log-reader.js');
  });

  it('status and spool load the bin\'s bundle only: no file of a package (yargs\' parser is in the bundle), none of the library\'s modules', async () => {
    for (const args of [['status'], ['spool', 'INSERT INTO clistart_t (a) VALUES (3)']]) {
      const log = join(dir, `modules-raw-${args[0]}.log`);
      const child = spawn(process.execPath, ['--import', HOOK, CLI, '--home', homes.sqlite!, ...args], { env: { ...process.env, QB_MODULE_LOG: log }, stdio: 'ignore' });
      expect(await new Promise((resolve, reject) => child.on('error', reject).on('close', resolve))).toBe(0);
      const files = [...new Set((await readFile(log, 'utf8')).split('\n').filter((m) => m !== '' && !m.startsWith('node:')))];
      const bundle = new Set(Object.keys(BUNDLE).map((file) => pathToFileURL(join(DIST, file)).href));
      expect(files.filter((m) => !bundle.has(m)), `querybatch ${args[0]}`).toEqual([]);
      // The modules that every command loads are in one file (startup), beside the entry, the
      // bundler's runtime, main and yargs; spool adds its dialect's and what it shares.
      expect(files.length, `querybatch ${args[0]}: ${files.join(' ')}`).toBeLessThanOrEqual(args[0] === 'status' ? 5 : 10);
    }
  });

  it("import 'querybatch' (the library entry) loads none of them either", async () => {
    const result = await loaded(['--input-type=module', '-e', `const { QueryBatch } = await import(${JSON.stringify(DIST_INDEX)}); console.log(typeof QueryBatch);`]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('function\n');
    expect(result.modules.some((m) => m.endsWith('/dist/querybatch.js'))).toBe(true);
    expect(heavyAmong(result.modules)).toEqual([]);
  });
});
