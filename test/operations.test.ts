import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { appendFile, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch, type FailedFileDetail, type StatusReport } from '../src/index.js';
import { formatErrorLine, formatSummaryLine } from '../src/ops/log-format.js';
import { followLogs } from '../src/ops/log-reader.js';
import { layoutOf } from '../src/spool/layout.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { decodeRecord } from '../src/spool/record.js';
import { CLI, CLOSED_PORT_URL, filesBelow, removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';
import { waitFor } from './daemon-helpers.js';

const t = useTestDatabase('operations');
let home: string;

async function writeConfig(config: unknown): Promise<void> {
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify(config));
}

afterEach(async () => {
  await removeHome(home);
});

describe('failed and respool', () => {
  it('respool --connection after the database comes back runs every connection failure in its original order; failed list --json shows them exactly', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE ordered (n INT AUTO_INCREMENT PRIMARY KEY, seq INT)');
    // The datasource points at a closed port: every job ends in failed/connection-… (one per run).
    await writeConfig({ datasources: { main: CLOSED_PORT_URL }, maxConnectionAttempts: 1 });
    const lib = new QueryBatch({ home, configFile: false, datasources: { main: CLOSED_PORT_URL }, maxConnectionAttempts: 1 });
    const ids: string[] = [];
    for (let seq = 1; seq <= 4; seq++) ids.push(await lib.spool('INSERT INTO ordered (seq) VALUES (?)', [seq]));
    for (let i = 0; i < 4; i++) expect(await lib.run()).toMatchObject({ connectionFailed: 1 });
    await lib.close();
    expect((await readdir(join(home, 'failed'))).sort()).toEqual(ids.map((id) => `connection-${id}.batchsql`));

    const list = await runCli(['--home', home, 'failed', 'list', '--json']);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(listed.map((f) => f.id)).toEqual(ids); // oldest first
    for (const [i, f] of listed.entries()) {
      expect(f).toEqual({
        name: `connection-${ids[i]}.batchsql`,
        class: 'connection',
        id: ids[i],
        datasource: 'main',
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        ageMs: expect.any(Number),
        attempts: 1,
        lastError: { class: 'connection', code: 'ECONNREFUSED', message: expect.stringContaining('ECONNREFUSED'), at: expect.any(String) },
        valid: true,
        dropIn: false,
      });
    }
    // A newer job spooled meanwhile: the respooled ones still go first (their ids are older).
    const later = (await runCli(['--home', home, 'spool', 'INSERT INTO ordered (seq) VALUES (?)', '-p', '5'])).stdout.trim();

    const env = { QUERYBATCH_DATASOURCE_MAIN: t.url }; // the database is back
    const respool = await runCli(['--home', home, 'respool', '--connection', '--json'], { env });
    expect(respool.stderr).toBe('');
    expect(respool.code).toBe(0);
    expect(JSON.parse(respool.stdout)).toEqual({
      respooled: ids.map((id) => ({ name: `connection-${id}.batchsql`, id, datasource: 'main' })),
      skipped: [],
    });
    expect(await readdir(join(home, 'failed'))).toEqual([]);
    for (const id of ids) {
      // Back in its own shard with its original id and the attempt count reset.
      const record = decodeRecord(await readFile(spoolPathFor(join(home, 'spool'), 'main', id), 'utf8'));
      expect(record).toMatchObject({ id, attempts: 0 });
    }
    const run = await runCli(['--home', home, 'run', '--json'], { env });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ success: 5, sqlFailed: 0, connectionFailed: 0 });
    const [rows] = await t.db.query('SELECT seq FROM ordered ORDER BY n');
    expect((rows as Array<{ seq: number }>).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(later > ids[3]!).toBe(true);
  });

  it('respool refuses names outside failed/ with exit 2 and moves nothing; unknown names and invalid files are skipped and said', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    const lib = new QueryBatch({ home });
    const id = await lib.spool('INSERT INTO no_such_table VALUES (1)');
    await lib.run();
    await lib.close();
    const name = `failed-${id}.batchsql`;
    await writeFile(join(home, 'failed', 'failed-broken.batchsql'), '{"format":"querybatch/1","id":');

    const passwd = await runCli(['--home', home, 'respool', '../../etc/passwd']);
    expect(passwd.code).toBe(2);
    expect(passwd.stderr).toMatch(/refused "\.\.\/\.\.\/etc\/passwd": outside failed\/\. Nothing was respooled \[CONFIG_INVALID\]/);
    for (const evil of [['/etc/passwd'], [name, '../spool/.id'], ['.'], ['failed/../querybatch.config.json']]) {
      const r = await runCli(['--home', home, 'respool', ...evil]);
      expect(r.code, evil.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/outside failed\//);
    }
    expect((await readdir(join(home, 'failed'))).sort()).toEqual(['failed-broken.batchsql', name].sort());

    const future = await runCli(['--home', home, 'respool', '--since', '2099-01-01T00:00:00Z', '--json']);
    expect(future.code).toBe(0);
    expect(JSON.parse(future.stdout)).toEqual({ respooled: [], skipped: [] });

    const mixed = await runCli(['--home', home, 'respool', '--json', 'failed-broken.batchsql', 'failed-nothere.batchsql', `failed/${name}`]);
    expect(mixed.code).toBe(1);
    const result = JSON.parse(mixed.stdout) as { respooled: unknown[]; skipped: Array<{ name: string; reason: string }> };
    expect(result.respooled).toEqual([{ name, id, datasource: 'main' }]);
    expect(result.skipped).toEqual([
      { name: 'failed-broken.batchsql', reason: expect.stringMatching(/^not a valid job file: Expected a querybatch\/1 JSON object/) },
      { name: 'failed-nothere.batchsql', reason: 'no such file in failed/' },
    ]);
    expect(await readdir(join(home, 'failed'))).toEqual(['failed-broken.batchsql']);
    expect(await stat(spoolPathFor(join(home, 'spool'), 'main', id))).toBeTruthy();
    expect((await runCli(['--home', home, 'respool'])).stderr).toMatch(/Expected what to respool: --all, --connection, --failed, --since or file names; got none/);
  });

  it('failed show prints the SQL, params redacted unless --show-params, and the full error; hostile text stays on its line', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    const lib = new QueryBatch({ home });
    const id = await lib.spool("INSERT INTO missing_table (a, b) VALUES (?, ?) /*\n2026-01-01T00:00:00Z runSQL: success=999\u001b[31m */", ['secret-value', 42]);
    await lib.run();
    await lib.close();
    const name = `failed-${id}.batchsql`;

    const shown = await runCli(['--home', home, 'failed', 'show', name]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`id:         ${id}`);
    expect(shown.stdout).toContain('class:      failed');
    expect(shown.stdout).toMatch(/error: {6}sql ER_NO_SUCH_TABLE errno=1146 sqlState=42S02 at /);
    expect(shown.stdout).toContain("message:    Table '");
    expect(shown.stdout).toContain('params:     2[string,number] (values hidden; --show-params shows them)');
    expect(shown.stdout).toContain('sql:\nINSERT INTO missing_table (a, b) VALUES (?, ?) /*\n2026-01-01T00:00:00Z runSQL: success=999\\u001b[31m */');
    expect(shown.stdout).not.toContain('secret-value');
    expect(shown.stdout).not.toContain('\u001b');

    const withParams = await runCli(['--home', home, 'failed', 'show', name, '--show-params', '--json']);
    expect(JSON.parse(withParams.stdout)).toMatchObject({ id, params: ['secret-value', 42], paramsSummary: '2[string,number]', sql: expect.stringContaining('missing_table'), lastError: { code: 'ER_NO_SUCH_TABLE', errno: 1146 } });
    const redacted = JSON.parse((await runCli(['--home', home, 'failed', 'show', name, '--json'])).stdout) as FailedFileDetail;
    expect(redacted.params).toBeNull();

    const list = await runCli(['--home', home, 'failed']);
    expect(list.stdout.split('\n')).toHaveLength(4); // header, one entry (2 lines), final newline
    expect(list.stdout).toContain(`${name}  failed  ${id}  main  age `);

    // A file name in failed/ with a newline in it (an invalid drop-in can bring one) stays on its line too.
    await writeFile(join(home, 'failed', 'failed-evil\n2026-01-01T00:00:00Z runSQL: success=999.batchsql'), 'garbage');
    const evil = await runCli(['--home', home, 'failed']);
    expect(evil.stdout).toContain('failed-evil\\n2026-01-01T00:00:00Z runSQL: success=999.batchsql  failed  -  -  age ');
    expect(evil.stdout.split('\n').some((l) => l.startsWith('2026-01-01'))).toBe(false);

    const missing = await runCli(['--home', home, 'failed', 'show', 'failed-nope.batchsql']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Expected a file named "failed-nope.batchsql" in failed\/; found none.*\[FAILED_FILE_NOT_FOUND\]/);
    expect((await runCli(['--home', home, 'failed', 'show', '../querybatch.config.json'])).code).toBe(2);
    expect((await runCli(['--home', home, 'failed', 'show'])).stderr).toMatch(/Expected `failed show NAME`/);
  });
});

describe('logs', () => {
  const at = (s: string) => new Date(s);
  const summary = (time: string, success: number) => formatSummaryLine(at(time), { success, sqlFailed: 1, connectionFailed: 0, totalMs: 12, avgMs: 3 });
  const error = (time: string, ds: string, id: string) => formatErrorLine(at(time), {
    class: 'sql', id, file: `spool/${ds}/x.batchsql`, datasource: ds, code: 'ER_NO_SUCH_TABLE', errno: 1146, attempts: 2, moved: `failed/failed-${id}.batchsql`, message: 'no "table"\nhere', sql: 'SELECT 1', params: '0[]',
  });

  async function writeLogs(): Promise<void> {
    await mkdir(join(home, 'logs'));
    // Rotated files hold the older lines: querybatch2.log is older than querybatch1.log.
    await writeFile(join(home, 'logs', 'querybatch2.log'), summary('2026-01-01T00:00:00.000Z', 1) + '\n');
    await writeFile(join(home, 'logs', 'querybatch1.log'), summary('2026-01-02T00:00:00.000Z', 2) + '\n');
    await writeFile(join(home, 'logs', 'querybatch.log'), summary('2026-01-03T00:00:00.000Z', 3) + '\nnot a log line\n' + summary('2026-01-05T00:00:00.000Z', 5) + '\n');
    await writeFile(join(home, 'logs', 'querybatch-error1.log'), error('2026-01-02T12:00:00.000Z', 'main', 'A1') + '\n');
    await writeFile(join(home, 'logs', 'querybatch-error.log'), error('2026-01-04T00:00:00.000Z', 'reports', 'B2') + '\n' + error('2026-01-04T01:00:00.000Z', 'main', 'C3') + '\n');
  }

  it('logs --json --since returns exactly the records after that time, both logs and rotated files in time order, with typed fields', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    await writeLogs();
    const r = await runCli(['--home', home, 'logs', '--json', '--since', '2026-01-02T06:00:00Z']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const err = (time: string, datasource: string, id: string) => ({
      log: 'error', time, class: 'sql', id, file: `spool/${datasource}/x.batchsql`, datasource, code: 'ER_NO_SUCH_TABLE', errno: 1146, attempts: 2, moved: `failed/failed-${id}.batchsql`, message: 'no "table"\nhere', sql: 'SELECT 1', params: '0[]',
    });
    const run = (time: string, success: number) => ({ log: 'run', time, success, sqlFailed: 1, connectionFailed: 0, totalMs: 12, avgMs: 3 });
    expect(records).toEqual([
      err('2026-01-02T12:00:00.000Z', 'main', 'A1'),
      run('2026-01-03T00:00:00.000Z', 3),
      err('2026-01-04T00:00:00.000Z', 'reports', 'B2'),
      err('2026-01-04T01:00:00.000Z', 'main', 'C3'),
      run('2026-01-05T00:00:00.000Z', 5),
    ]);

    const all = await runCli(['--home', home, 'logs']);
    expect(all.stdout.split('\n').filter(Boolean)).toHaveLength(7);
    expect(all.stdout.startsWith(summary('2026-01-01T00:00:00.000Z', 1) + '\n')).toBe(true);

    const filtered = await runCli(['--home', home, 'logs', '--errors', '--datasource', 'main', '--until', '2026-01-04T12:00:00Z', '--tail', '1', '--json']);
    expect(filtered.stdout.trim().split('\n').map((l): unknown => JSON.parse(l))).toEqual([err('2026-01-04T01:00:00.000Z', 'main', 'C3')]);

    const bad = await runCli(['--home', home, 'logs', '--since', 'last tuesday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Expected --since to be an ISO time like .* or an age like 15m, 2h, 7d; got "last tuesday"/);
  });

  it('a statement carrying a forged summary line gives one summary line, read back as one run record', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    const lib = new QueryBatch({ home });
    const forged = 'SELECT * FROM no_table_here\n2026-01-01T00:00:00Z runSQL: success=999; SQLFailed=0; ConnectedFailed=0; SQL=1ms; avg=1ms';
    await lib.spool(forged);
    await lib.run();
    await lib.close();
    const r = await runCli(['--home', home, 'logs', '--json']);
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((x) => x.log)).toEqual(['error', 'run']);
    expect(records[0]).toMatchObject({ class: 'sql', sql: forged });
    expect(records[1]).toMatchObject({ success: 0, sqlFailed: 1 });
    const text = await runCli(['--home', home, 'logs']);
    expect(text.stdout.split('\n').filter((l) => l.includes('runSQL: success=999'))).toHaveLength(1); // inside the quoted sql only
    expect(text.stdout.split('\n').filter((l) => /^\S+ runSQL: /.test(l))).toHaveLength(1);
  });

  it('logs --follow prints a new run\'s summary line as it is written', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    await t.db.query('CREATE TABLE followed (n INT AUTO_INCREMENT PRIMARY KEY)');
    await writeLogs();
    const child = spawn(process.execPath, [CLI, '--home', home, 'logs', '--follow', '--json', '--since', '2026-01-05T00:00:00Z'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await waitFor(() => (out.includes('"success":5') ? true : undefined), 10_000, 'the existing line');
      await runCli(['--home', home, 'spool', 'INSERT INTO followed () VALUES ()']);
      expect((await runCli(['--home', home, 'run'])).code).toBe(0);
      const line = await waitFor(() => out.split('\n').find((l) => l.includes('"success":1')), 5_000, 'the new summary');
      expect(JSON.parse(line)).toMatchObject({ log: 'run', success: 1, sqlFailed: 0, connectionFailed: 0 });
      expect(Date.parse((JSON.parse(line) as { time: string }).time)).toBeGreaterThan(Date.now() - 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

describe('logs --follow across rotation', () => {
  it('a line written just before a rotation, and lines in the new file past the old size, all arrive once, in order', async () => {
    home = await tempHome();
    const logs = join(home, 'logs');
    await mkdir(logs);
    const line = (k: number) => formatSummaryLine(new Date(Date.UTC(2026, 0, 1, 0, 0, k)), { success: k, sqlFailed: 0, connectionFailed: 0, totalMs: 1, avgMs: 1 }) + '\n';
    const runLog = join(logs, 'querybatch.log');
    await writeFile(runLog, line(0).repeat(5)); // there before: not followed
    const seen: number[] = [];
    const controller = new AbortController();
    const following = followLogs(layoutOf(home), {}, (e) => seen.push((e.record as { success: number }).success), controller.signal);
    try {
      await new Promise((r) => setTimeout(r, 50));
      await appendFile(runLog, line(1));
      await waitFor(() => (seen.length === 1 ? true : undefined), 5_000, 'line 1');
      // Written and rotated between two polls, as winston's tailable rotation does it.
      await appendFile(runLog, line(2));
      await rename(runLog, join(logs, 'querybatch1.log'));
      await writeFile(runLog, line(3) + line(4) + line(5) + line(6) + line(7) + line(8)); // longer than the old file
      await waitFor(() => (seen.length >= 8 ? true : undefined), 5_000, 'lines 2-8');
      await appendFile(runLog, line(9));
      await waitFor(() => (seen.length >= 9 ? true : undefined), 5_000, 'line 9');
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      controller.abort();
      await following;
    }
  });
});

describe('logs --follow: a run\'s error lines before its summary', () => {
  it('when both arrive in one poll, and when the error line reaches its file after the summary reached its own', async () => {
    home = await tempHome();
    const logs = join(home, 'logs');
    await mkdir(logs);
    const runLog = join(logs, 'querybatch.log');
    const errorLog = join(logs, 'querybatch-error.log');
    await writeFile(runLog, '');
    await writeFile(errorLog, '');
    const summary = (k: number) => formatSummaryLine(new Date(Date.UTC(2026, 0, 1, 0, 0, k, 500)), { success: 0, sqlFailed: k, connectionFailed: 0, totalMs: 1, avgMs: 1 }) + '\n';
    const error = (k: number) => formatErrorLine(new Date(Date.UTC(2026, 0, 1, 0, 0, k, 100)), { class: 'sql', id: null, file: `f${k}`, datasource: 'main', code: 'E', moved: 'failed/x', message: 'm' }) + '\n';
    const seen: string[] = [];
    const controller = new AbortController();
    const following = followLogs(layoutOf(home), {}, (e) => seen.push(e.record.log === 'run' ? `run${e.record.sqlFailed}` : `error:${e.record.file}`), controller.signal);
    try {
      await new Promise((r) => setTimeout(r, 50));
      // Run 1: both lines land between two polls.
      await appendFile(runLog, summary(1));
      await appendFile(errorLog, error(1));
      await waitFor(() => (seen.length >= 2 ? true : undefined), 5_000, 'run 1');
      // Run 2: the summary is read a poll before the run's error line.
      await appendFile(runLog, summary(2));
      await new Promise((r) => setTimeout(r, 120));
      await appendFile(errorLog, error(2));
      await waitFor(() => (seen.length >= 4 ? true : undefined), 5_000, 'run 2');
      expect(seen).toEqual(['error:f1', 'run1', 'error:f2', 'run2']);
    } finally {
      controller.abort();
      await following;
    }
  });
});

describe('init', () => {
  it('creates the layout and a commented config that works, and never overwrites an existing one', async () => {
    home = await tempHome();
    const where = join(home, 'new-home');
    const first = await runCli(['--home', where, 'init', '--url', t.url]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('querybatch.config.json');
    expect((await readdir(where)).sort()).toEqual(['failed', 'logs', 'querybatch.config.json', 'spool']);
    const text = await readFile(join(where, 'querybatch.config.json'), 'utf8');
    expect(JSON.parse(text)).toMatchObject({ '//': expect.stringContaining('comments'), datasources: { main: t.url }, schedule: { cron: '*/5 * * * *' } });
    expect((await stat(join(where, 'querybatch.config.json'))).mode & 0o777).toBe(0o600);
    // The commented file is a working config.
    const status = await runCli(['--home', where, 'status', '--json']);
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as StatusReport).pending).toEqual({ main: { count: 0, oldestId: null, oldestAgeMs: null } });

    await writeFile(join(where, 'querybatch.config.json'), '{ "datasources": { "mine": "mysql://me@db/x" } }');
    const kept = await runCli(['--home', where, 'init']);
    expect(kept.code).toBe(0);
    const again = kept;
    expect(again.stdout).toMatch(/querybatch\.config\.json exists already; left as it is/);
    expect(await readFile(join(where, 'querybatch.config.json'), 'utf8')).toBe('{ "datasources": { "mine": "mysql://me@db/x" } }');
  });
});

describe('init without --url', () => {
  it('makes datasource main an embedded SQLite database in the home: spool and run work with no database server', async () => {
    home = await tempHome();
    const where = join(home, 'fresh');
    const init = await runCli(['--home', where, 'init']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(where, 'querybatch.config.json'), 'utf8'))).toMatchObject({ datasources: { main: 'sqlite:querybatch.db' } });
    const create = await runCli(['--home', where, 'spool', 'CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT, action TEXT)']);
    expect(create.code, create.stderr).toBe(0);
    const insert = await runCli(['--home', where, 'spool', 'INSERT INTO audit (user, action) VALUES (?, ?)', '-p', 'alice', '-p', 'login']);
    expect(insert.code, insert.stderr).toBe(0);
    const run = await runCli(['--home', where, 'run', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ success: 2, sqlFailed: 0, connectionFailed: 0 });
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');
    const db = new Database(join(where, 'querybatch.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT user, action FROM audit').all()).toEqual([{ user: 'alice', action: 'login' }]);
    } finally {
      db.close();
    }
  });
});

describe('progress', () => {
  it('run on a terminal draws a progress bar on stderr; not when piped, not with --json', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    await t.db.query('CREATE TABLE progress (n INT AUTO_INCREMENT PRIMARY KEY, k INT)');
    const lib = new QueryBatch({ home, durability: 'none' });
    // Slow enough (about a second) that the bar appears.
    const spoolAll = async () => {
      for (let k = 0; k < 100; k++) await lib.spool('INSERT INTO progress (k) SELECT ? FROM DUAL WHERE SLEEP(0.01) = 0', [k]);
    };
    await spoolAll();
    // A real pseudo-terminal: script(1) runs the CLI on one and copies what it writes.
    const tty = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn('script', ['-qec', `"${process.execPath}" "${CLI}" --home "${home}" run`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
      child.stdin.end();
    });
    expect(tty.code).toBe(0);
    expect(tty.out).toMatch(/\r\[#+\.*\] \d+\/100 +\d+% +[\d.]+\/s +ETA \d+s/);
    expect(tty.out).toContain('runSQL: success=100;');

    await spoolAll();
    const piped = await runCli(['--home', home, 'run']);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    await spoolAll();
    await lib.close();
    const json = await new Promise<string>((resolve) => {
      const child = spawn('script', ['-qec', `"${process.execPath}" "${CLI}" --home "${home}" run --json`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', () => resolve(out));
      child.stdin.end();
    });
    expect(json).not.toContain('[#');
    expect(JSON.parse(json.trim())).toMatchObject({ success: 100 });
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });
});
