import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { QueryBatch, type StatusReport } from '../src/index.js';
import { spawn } from 'node:child_process';
import { CLI, CLOSED_PORT_URL, filesBelow, removeHome, runCli, tempHome, useTestDatabase, waitFor } from './helpers.js';

const t = useTestDatabase('cli', 'CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(20), what VARCHAR(20), big BIGINT NULL, d DATETIME(3) NULL)');
let home: string;

async function writeConfig(config: unknown): Promise<void> {
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify(config));
}

afterEach(async () => {
  await removeHome(home);
});

describe('querybatch CLI', () => {
  it('spool then run --json works end to end (exit 0), with --param strings, --params JSON tags and SQL on stdin', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: { url: t.url } } });
    const a = await runCli(['--home', home, 'spool', 'INSERT INTO audit (who, what) VALUES (?, ?)', '--param', 'alice', '-p', '007']);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(a.stdout.trim()).toMatch(/^[0-9A-Z]{26}$/);
    const b = await runCli(['--home', home, 'spool', '--json', '--params', '["bob", "x", {"$bigint": "9007199254740993"}, {"$date": "2026-01-02T03:04:05.678Z"}]', 'INSERT INTO audit (who, what, big, d) VALUES (?, ?, ?, ?)']);
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout)).toEqual({ id: expect.stringMatching(/^[0-9A-Z]{26}$/) });
    const c = await runCli(['spool', '-'], { cwd: home, input: "INSERT INTO audit (who, what) VALUES ('carol', 'stdin')\n" });
    expect(c.code).toBe(0);

    const run = await runCli(['--home', home, 'run', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ success: 3, sqlFailed: 0, connectionFailed: 0, datasources: { main: { success: 3 } } });
    const [rows] = await t.db.query('SELECT who, what, big, d FROM audit ORDER BY n');
    expect(rows).toEqual([
      { who: 'alice', what: '007', big: null, d: null },
      { who: 'bob', what: 'x', big: '9007199254740993', d: new Date('2026-01-02T03:04:05.678Z') },
      { who: 'carol', what: 'stdin', big: null, d: null },
    ]);

    const status = await runCli(['--home', home, 'status', '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      pendingTotal: 0,
      pending: { main: { count: 0 } },
      failed: { connection: 0, failed: 0 },
      lastRun: { success: 3, sqlFailed: 0, connectionFailed: 0 },
    });
    await t.db.query('TRUNCATE audit');
  });

  it('run exits 1 when the run had failures, and prints a readable summary', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    expect((await runCli(['--home', home, 'spool', 'INSERT INTO missing_table VALUES (1)'])).code).toBe(0);
    const run = await runCli(['--home', home, 'run']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^runSQL: success=0; SQLFailed=1; ConnectedFailed=0; SQL=\d+ms; avg=\d+ms\n  main: 0 ok, 1 failed/);
    const status = await runCli(['--home', home, 'status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('failed: 0 connection-, 1 failed-');
    expect(status.stdout).toMatch(/last run: \S+ success=0; SQLFailed=1/);
  });

  it('run exits 1 on a connection failure and status shows the pending file with its age', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: CLOSED_PORT_URL } });
    expect((await runCli(['--home', home, 'spool', 'SELECT 1'])).code).toBe(0);
    const run = await runCli(['--home', home, 'run']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('ConnectedFailed=1');
    expect(run.stdout).toContain('stopped: cannot reach the database (ECONNREFUSED');
    const status = JSON.parse((await runCli(['--home', home, 'status', '--json'])).stdout) as StatusReport;
    expect(status.pending.main?.count).toBe(1);
    expect(status.pending.main?.oldestAgeMs).toBeGreaterThanOrEqual(0);
  });

  it('run says which jobs ran out of connection attempts (moved to failed/connection-) and that invalid files were set aside', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: CLOSED_PORT_URL }, maxConnectionAttempts: 2, dropInSettleMs: 0 });
    expect((await runCli(['--home', home, 'spool', 'SELECT 1'])).code).toBe(0);
    await writeFile(join(home, 'spool', 'junk.batchsql'), 'not a job');
    const first = await runCli(['--home', home, 'run']);
    expect(first.stdout).toContain('1 file(s) that are not valid jobs set aside in failed/failed-… (why: querybatch failed list)');
    expect(first.stdout).not.toContain('failed/connection-');
    const second = await runCli(['--home', home, 'run', '--json']);
    expect((JSON.parse(second.stdout) as { datasources: Record<string, unknown> }).datasources.main).toMatchObject({ connectionFailed: 1, connectionMoved: 1 });
    expect(await readdir(join(home, 'failed'))).toContain('.failed-junk.batchsql.reason');
    await runCli(['--home', home, 'respool', '--connection']);
    expect((await runCli(['--home', home, 'run'])).stdout).not.toContain('failed/connection-');
    const text = await runCli(['--home', home, 'run']);
    expect(text.stdout).toMatch(/main: 0 ok, stopped: cannot reach the database \(ECONNREFUSED[^\n]*\), 1 out of connection attempts moved to failed\/connection-… \(respool --connection once it is back\)/);
    expect(text.stdout).not.toContain('not valid jobs');
  });

  it('messages say what was expected and what was given: the flag\'s own text, whitespace-only SQL, a number out of range, the server\'s text without what querybatch added', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    const cases: Array<[string[], RegExp]> = [
      [['spool', 'SELECT ?', '--params', '[1e400]'], /Expected --params\[0\] to be null, a boolean, a number, a string or a \{.*\} tag; found Infinity, a number out of range of a double \(--params given: "\[1e400\]"\) \[UNSERIALIZABLE_PARAM\]/],
      [['spool', 'SELECT 1', '--timeout-ms', 'abc'], /Expected --timeout-ms to be a whole number > 0; got "abc"$/m],
      [['spool', 'SELECT 1', '--timeout-ms', '1.5'], /Expected --timeout-ms to be a whole number > 0; got "1\.5"/],
      [['run', '--limit', 'x'], /Expected --limit to be a whole number > 0; got "x"$/m],
      [['start', '--start-delay', 'soon'], /Expected --start-delay to be a whole number of milliseconds >= 0; got "soon"$/m],
      [['spool', ' \n\t '], /Expected SQL to be a non-empty string; got only whitespace \(" \\n\\t "\) \[EMPTY_SQL\]/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['--home', home, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect((await runCli(['--home', home, 'spool', 'SELECT 1', '--timeout-ms', '250'])).code).toBe(0);

    // The server's text quotes the statement as it was written, not the ledger's COMMIT after it.
    const id = (await runCli(['--home', home, 'spool', "UPDATE no_such_table SET a = 'x"])).stdout.trim();
    await runCli(['--home', home, 'run']);
    const failed = JSON.parse((await runCli(['--home', home, 'failed', 'show', `failed-${id}.batchsql`, '--json'])).stdout) as { lastError: { code: string; message: string } };
    expect(failed.lastError.code).toBe('ER_PARSE_ERROR');
    expect(failed.lastError.message).toMatch(/near ''x' at line 1$/);
    expect(failed.lastError.message).not.toContain('COMMIT');

    const child = spawn(process.execPath, [CLI, '--home', home, 'start', '--start-delay', '500', '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((resolve) => child.on('close', resolve));
    try {
      await waitFor(() => (out.includes('querybatch started') ? true : undefined), 10_000, 'the started line');
      expect(out).toContain('first run in 500ms,');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('status says apart claims of a runner that died (recovered by the next run) from claims of a running one, in text, JSON and the library', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: CLOSED_PORT_URL } });
    const ids = [];
    for (const sql of ['SELECT 1', 'SELECT 2']) ids.push((await runCli(['--home', home, 'spool', sql])).stdout.trim());
    const jobs = (await filesBelow(join(home, 'spool', 'main'))).sort();
    // A runner of this host whose pid is gone, and one of another host (which this host can't judge).
    const dead = join(home, 'spool', '.active', `${hostname()}.99999999.${Date.now()}`, 'main');
    const other = join(home, 'spool', '.active', 'elsewhere.example.42.1', 'main');
    for (const [dir, job] of [[dead, jobs[0]!], [other, jobs[1]!]] as const) {
      await mkdir(dir, { recursive: true });
      await rename(job, join(dir, basename(job)));
    }
    const text = await runCli(['--home', home, 'status']);
    expect(text.stdout).toContain('claimed by a runner now: 1\n');
    expect(text.stdout).toContain('left claimed by a runner that died: 1 (the next run gives them back to the spool)\n');
    const json = JSON.parse((await runCli(['--home', home, 'status', '--json'])).stdout) as StatusReport;
    expect(json).toMatchObject({ active: 1, abandoned: 1, pendingTotal: 0 });
    const q = new QueryBatch({ home });
    try {
      expect(await q.status()).toMatchObject({ active: 1, abandoned: 1 });
    } finally {
      await q.close();
    }
  });

  it('exits 2 with a one-line error on usage and configuration errors', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--home', home, 'spool', '-d', 'nope', 'SELECT 1'], {}, /^querybatch: Expected a configured datasource \(main\); got "nope" \[UNKNOWN_DATASOURCE\]\n$/],
      [['--home', home, 'run', '-d', 'nope'], {}, /UNKNOWN_DATASOURCE/],
      [['--home', home, 'run'], { QUERYBATCH_DATASOURCE_MAIN: 'not a url' }, /^querybatch: Expected datasource "main" url to look like mysql:\/\/user@host:3306\/database, postgres:\/\/user@host:5432\/database or sqlite:querybatch.db; got "not a url" \[INVALID_DATASOURCE_URL\]\n$/],
      [['--home', join(home, 'querybatch.config.json', 'nowhere'), 'run'], {}, /^querybatch: Expected the home directory .*nowhere to exist or to be creatable; found ENOTDIR \[HOME_UNUSABLE\]\n$/],
      [['--home', join(home, 'querybatch.config.json'), 'status'], {}, /^querybatch: Expected the home .*querybatch\.config\.json to be a directory; found a file \[HOME_UNUSABLE\]\n$/],
      [['--home', home, 'frobnicate'], {}, /Unknown argument: frobnicate/],
      [['--home', home], {}, /Expected a command: spool, run, start, status, result, failed, respool, pause, resume, cancel, logs, dashboard or init/],
      [['--home', home, 'spool', ''], {}, /EMPTY_SQL/],
      [['--home', home, 'run', '--limit', '-3'], {}, /Expected --limit to be a whole number > 0; got "-3"/],
      [['--home', home, 'spool', '--params', '{bad json', 'SELECT 1'], {}, /Expected --params to be a JSON array or object/],
      [['--home', home, '--config', join(home, 'absent.json'), 'status'], {}, /Expected a readable config file at .*absent\.json; found ENOENT/],
    ];
    for (const [args, env, pattern] of cases) {
      const result = await runCli(args, { env });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(pattern);
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    await writeFile(join(home, 'querybatch.config.json'), '{ "datasources": ');
    const broken = await runCli(['--home', home, 'status']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/Expected .*querybatch\.config\.json to be JSON/);
    // Nothing was spooled by any of them.
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('exits 2 with the reason for a datasource URL mysql2 could not use (a bad %-escape, ssl, an unknown option), before any run', async () => {
    home = await tempHome();
    const secret = 'Hunter2secret';
    const cases: Array<[string, RegExp]> = [
      [`mysql://root:${secret}%zz@127.0.0.1:3306/x`, /^querybatch: Expected datasource "main" url password to be %-escaped UTF-8 \(a % as %25\); got a % not followed by two hex digits of UTF-8 \[INVALID_DATASOURCE_URL\]\n$/],
      [`mysql://root:${secret}@127.0.0.1:3306/x?ssl=true`, /^querybatch: Expected datasource "main" url ssl to be a JSON object of TLS options .*; got "true" \[INVALID_DATASOURCE_URL\]\n$/],
      [`mysql://root:${secret}@127.0.0.1:3306/x?sslmode=require`, /^querybatch: Expected datasource "main" url query parameters to be mysql2 connection options \(.*\); got "sslmode" \[INVALID_DATASOURCE_URL\]\n$/],
    ];
    const config = join(home, 'bad-url.json');
    for (const [url, pattern] of cases) {
      await writeFile(config, JSON.stringify({ datasources: { main: url } }));
      const result = await runCli(['--home', home, '--config', config, 'run']);
      expect(result.code, url).toBe(2);
      expect(result.stderr, url).toMatch(pattern);
      expect(result.stdout + result.stderr).not.toContain(secret);
    }
    // Nothing was run: no failed/ files, no log of a run.
    expect(await filesBelow(join(home, 'failed')).catch(() => [])).toEqual([]);
  });

  it('takes configuration from the file, then the environment, then flags', async () => {
    home = await tempHome();
    const other = await tempHome();
    try {
      // The file points main at a closed port; the environment fixes it (matched case-insensitively).
      await writeConfig({ datasources: { Main: CLOSED_PORT_URL } });
      const env = { QUERYBATCH_DATASOURCE_MAIN: t.url, QUERYBATCH_HOME: other };
      // QUERYBATCH_HOME chooses the home unless --home is given.
      expect((await runCli(['spool', 'SELECT 1'], { env: { ...env, QUERYBATCH_HOME: home } })).code).toBe(0);
      const run = await runCli(['--home', home, 'run', '--json'], { env });
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ success: 1, datasources: { Main: { success: 1 } } });
      expect(await readdir(other)).toEqual([]);
      // --config names another file.
      await writeFile(join(other, 'alt.json'), JSON.stringify({ datasources: { alt: t.url } }));
      const alt = await runCli(['--home', home, '--config', join(other, 'alt.json'), 'status', '--json']);
      expect((JSON.parse(alt.stdout) as StatusReport).pending).toHaveProperty('alt');
    } finally {
      await removeHome(other);
    }
  });

  it('prints help with every command and the exit codes', async () => {
    home = await tempHome();
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['spool [sql]', 'run', 'status', 'start', 'failed [action] [names..]', 'respool [names..]', 'pause <name>', 'resume <name>', 'cancel <id>', 'logs', 'init', '--home', '--config', '--json', 'Exit codes: 0 ok, 1 the run had failures, 2 usage']) {
      expect(help.stdout).toContain(word);
    }
    const version = await runCli(['--version']);
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(pkg.version);
  });
});
