import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isQueryBatchError } from '../src/index.js';
import { CLI, runCli } from './helpers.js';
import { useDashboardFixture } from './dashboard-fixture.js';
import { sleep, startDaemon, waitFor, type Daemon } from './daemon-helpers.js';

/**
 * The dashboard's HTTP server against MariaDB: /metrics read from the spool and failed/,
 * the token rules, the daemon's run counters (`start --http`), and `querybatch dashboard`.
 */

const dash = useDashboardFixture('dashboard');
const { serve, setup } = dash;

/** Prometheus text into `name{labels}` → value (labels as written, in prom-client's order). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await fetch(`${url}metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseMetrics(await res.text());
}

describe('/metrics', () => {
  it('pending per datasource and the oldest age, from the spool (2 datasources); an update shows on the next scrape', async () => {
    const qb = await setup();
    for (let i = 0; i < 7; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [i], { datasource: 'a' });
    for (let i = 0; i < 3; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [100 + i], { datasource: 'b' });
    await sleep(50);
    const server = await serve(qb);
    const m = await scrape(server.url);
    expect(m.get('querybatch_pending_jobs{datasource="a"}')).toBe(7);
    expect(m.get('querybatch_pending_jobs{datasource="b"}')).toBe(3);
    expect(m.get('querybatch_oldest_pending_age_seconds{datasource="a"}')).toBeGreaterThan(0.04);
    expect(m.get('querybatch_oldest_pending_age_seconds{datasource="b"}')).toBeGreaterThan(0);
    expect(m.get('querybatch_paused{datasource="a"}')).toBe(0);
    expect(m.get('querybatch_failed_files{datasource="a",class="failed"}')).toBe(0);
    // Not a daemon's counters unless asked: the library default serves them.
    expect(m.has('querybatch_run_duration_seconds_count')).toBe(true);

    await qb.spool('INSERT INTO t (id) VALUES (?)', [200], { datasource: 'b' });
    expect((await scrape(server.url)).get('querybatch_pending_jobs{datasource="b"}')).toBe(4);
    await qb.run();
    const after = await scrape(server.url);
    expect(after.get('querybatch_pending_jobs{datasource="a"}')).toBe(0);
    expect(after.get('querybatch_oldest_pending_age_seconds{datasource="a"}')).toBe(0);
  });

  it('failed files by datasource and class after a run with a refused statement', async () => {
    const qb = await setup();
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'b' });
    const summary = await qb.run();
    expect(summary).toMatchObject({ success: 1, sqlFailed: 1 });
    const server = await serve(qb);
    const m = await scrape(server.url);
    expect(m.get('querybatch_failed_files{datasource="b",class="failed"}')).toBe(1);
    expect(m.get('querybatch_failed_files{datasource="b",class="connection"}')).toBe(0);
    expect(m.get('querybatch_failed_files{datasource="a",class="failed"}')).toBe(0);
    // A file put into failed/ by hand, not a job: class other, datasource unknown.
    await writeFile(join(dash.home, 'failed', 'notes.txt'), 'hello');
    const m2 = await scrape(server.url);
    expect(m2.get('querybatch_failed_files{datasource="unknown",class="other"}')).toBe(1);
    expect(m2.get('querybatch_failed_files{datasource="b",class="failed"}')).toBe(1);
  });

  it('a paused marker (spool/.paused/<datasource>) shows as 1', async () => {
    const qb = await setup();
    const server = await serve(qb);
    expect((await scrape(server.url)).get('querybatch_paused{datasource="b"}')).toBe(0);
    await import('node:fs/promises').then(async (fs) => {
      await fs.mkdir(join(dash.home, 'spool', '.paused'), { recursive: true });
      await fs.writeFile(join(dash.home, 'spool', '.paused', 'b'), '');
    });
    const m = await scrape(server.url);
    expect(m.get('querybatch_paused{datasource="b"}')).toBe(1);
    expect(m.get('querybatch_paused{datasource="a"}')).toBe(0);
  });

  it('the run counters of the process serving them: jobs_total by outcome, statement and run durations', async () => {
    const qb = await setup();
    const server = await serve(qb);
    for (let i = 0; i < 4; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [i], { datasource: 'a' });
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'a' });
    await qb.run();
    const m = await scrape(server.url);
    expect(m.get('querybatch_jobs_total{datasource="a",outcome="succeeded"}')).toBe(4);
    expect(m.get('querybatch_jobs_total{datasource="a",outcome="failed"}')).toBe(1);
    expect(m.get('querybatch_statement_duration_seconds_count{datasource="a"}')).toBeGreaterThanOrEqual(4);
    expect(m.get('querybatch_statement_duration_seconds_bucket{le="+Inf",datasource="a"}')).toBe(m.get('querybatch_statement_duration_seconds_count{datasource="a"}'));
    expect(m.get('querybatch_run_duration_seconds_count')).toBe(1);
    expect(m.get('querybatch_run_duration_seconds_sum')).toBeGreaterThan(0);
    // Closed, the server no longer counts this instance's runs.
    await server.close();
    await expect(fetch(`${server.url}metrics`)).rejects.toThrow();
  });
});

describe('token', () => {
  it('with a token: 401 without it or with a wrong one, 200 with the Bearer header; /healthz needs none', async () => {
    const qb = await setup();
    const server = await serve(qb, { token: 's3cret-token' });
    expect(server.tokenRequired).toBe(true);
    const none = await fetch(`${server.url}metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    expect((await fetch(`${server.url}metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(server.url)).status).toBe(401);
    const m = await scrape(server.url, { authorization: 'Bearer s3cret-token' });
    expect(m.get('querybatch_pending_jobs{datasource="a"}')).toBe(0);
    const health = await fetch(`${server.url}healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
  });

  it('?token= on a page load sets an HttpOnly SameSite=Strict cookie that lets later requests in', async () => {
    const qb = await setup();
    const server = await serve(qb, { token: 'tok-123' });
    expect((await fetch(`${server.url}?token=nope`)).status).toBe(401);
    const page = await fetch(`${server.url}?token=tok-123`);
    expect(page.status).toBe(200);
    const cookie = page.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain('tok-123'); // an HMAC of the token, not the token
    const pair = cookie.split(';')[0]!;
    expect((await fetch(`${server.url}metrics`, { headers: { cookie: pair } })).status).toBe(200);
    expect((await fetch(`${server.url}metrics`, { headers: { cookie: `${pair.split('=')[0]}=forged` } })).status).toBe(401);
    // The cookie is not a Bearer token.
    expect((await fetch(`${server.url}metrics`, { headers: { authorization: `Bearer ${pair.split('=')[1]}` } })).status).toBe(401);
  });

  it('the token from config dashboard.token, and from QUERYBATCH_DASHBOARD_TOKEN over the config (CLI)', async () => {
    const qb = await setup({ dashboard: { token: 'from-config' } });
    const server = await serve(qb);
    expect((await fetch(`${server.url}metrics`)).status).toBe(401);
    expect((await fetch(`${server.url}metrics`, { headers: { authorization: 'Bearer from-config' } })).status).toBe(200);

    const child = await dashboardProcess(['--port', '0'], { QUERYBATCH_DASHBOARD_TOKEN: 'from-env' });
    expect((await fetch(`${child.url}metrics`, { headers: { authorization: 'Bearer from-config' } })).status).toBe(401);
    expect((await fetch(`${child.url}metrics`, { headers: { authorization: 'Bearer from-env' } })).status).toBe(200);
  });

  it('a host other than loopback without a token is refused (DASHBOARD_TOKEN_REQUIRED; the CLI exits 2); with one it listens', async () => {
    const qb = await setup();
    const refused = await qb.serveDashboard({ host: '0.0.0.0', port: 0 }).catch((e: unknown) => e);
    expect(isQueryBatchError(refused, 'DASHBOARD_TOKEN_REQUIRED')).toBe(true);
    const cli = await runCli(['--home', dash.home, 'dashboard', '--host', '0.0.0.0', '--port', '0']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('Expected a token to listen on 0.0.0.0');
    const daemon = await runCli(['--home', dash.home, 'start', '--http', '0.0.0.0:0']);
    expect(daemon.code).toBe(2);
    expect(daemon.stderr).toContain('[DASHBOARD_TOKEN_REQUIRED]');
    const server = await serve(qb, { host: '0.0.0.0', token: 'x' });
    expect(server.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/);
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: { authorization: 'Bearer x' } })).status).toBe(200);
  });
});

interface DashboardProcess {
  readonly url: string;
  readonly firstLine: string;
}

/** `querybatch dashboard ARGS` in a child process, until its first line (its URL); stopped with SIGTERM after the test. */
async function dashboardProcess(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<DashboardProcess> {
  const child = spawn(process.execPath, [CLI, '--home', dash.home, 'dashboard', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  dash.defer(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  const firstLine = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`dashboard exited ${child.exitCode}: ${stderr}`);
    return stdout.includes('\n') ? stdout.split('\n')[0] : undefined;
  }, 10_000, 'the dashboard URL');
  const url = firstLine.startsWith('{') ? (JSON.parse(firstLine) as { url?: string }).url : /on (http:\/\/\S+\/)/.exec(firstLine)?.[1];
  if (url === undefined) throw new Error(`no URL in ${JSON.stringify(firstLine)}`);
  return { url, firstLine };
}

describe('querybatch dashboard', () => {
  it('prints its URL, serves /metrics there, and stops on SIGTERM with exit 0', async () => {
    const qb = await setup();
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'b' });
    const child = spawn(process.execPath, [CLI, '--home', dash.home, 'dashboard', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    dash.defer(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    await waitFor(() => stdout.includes('\n') || undefined, 10_000, 'the URL line');
    expect(stdout).toMatch(/^querybatch dashboard on http:\/\/127\.0\.0\.1:\d+\/ \(metrics: http:\/\/127\.0\.0\.1:\d+\/metrics\)\n/);
    const url = /on (http:\/\/\S+\/)/.exec(stdout)![1]!;
    const m = await scrape(url);
    expect(m.get('querybatch_pending_jobs{datasource="b"}')).toBe(1);
    // The dashboard process runs nothing: no run counters.
    expect(m.has('querybatch_run_duration_seconds_count')).toBe(false);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('querybatch dashboard stopped');
  });

  it('--json prints a listening event with the URL; --read-only says so on /', async () => {
    await setup();
    const child = await dashboardProcess(['--json', '--port', '0', '--read-only']);
    const event = JSON.parse(child.firstLine) as Record<string, unknown>;
    expect(event).toMatchObject({ event: 'listening', url: child.url, metrics: `${child.url}metrics`, token: false });
    expect(await (await fetch(child.url)).text()).toContain('<span class="ro">read-only</span>');
  });
});

describe('querybatch start --http', () => {
  let daemon: Daemon | null = null;
  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
  });

  it('serves the daemon\'s counters: jobs_total by outcome and the duration histograms after a run', async () => {
    const qb = await setup();
    for (let i = 0; i < 5; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [i], { datasource: 'a' });
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'b' });
    await qb.close();
    daemon = await startDaemon(dash.home, ['--http', '127.0.0.1:0', '--start-delay', '300', '--no-watch']);
    const listening = daemon.events.find((e) => e.event === 'listening');
    expect(listening?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const url = listening!.url as string;
    const before = await scrape(url);
    expect(before.get('querybatch_pending_jobs{datasource="a"}')).toBe(5);
    await daemon.waitForEvent((e) => e.event === 'run', 15_000, 'the first run');
    const m = await waitFor(async () => {
      const s = await scrape(url);
      // The spool's gauges come from a snapshot up to 2 s old (the daemon's default cache).
      return s.get('querybatch_run_duration_seconds_count') === 1 && s.get('querybatch_pending_jobs{datasource="a"}') === 0 ? s : undefined;
    }, 5_000, 'the run counted and the spool seen drained');
    expect(m.get('querybatch_jobs_total{datasource="a",outcome="succeeded"}')).toBe(5);
    expect(m.get('querybatch_jobs_total{datasource="b",outcome="failed"}')).toBe(1);
    expect(m.get('querybatch_statement_duration_seconds_count{datasource="a"}')).toBe(5);
    expect(m.get('querybatch_pending_jobs{datasource="a"}')).toBe(0);
    expect(m.get('querybatch_failed_files{datasource="b",class="failed"}')).toBe(1);
    expect(await daemon.stop()).toBe(0);
    daemon = null;
  });

  it('refuses a malformed --http with exit 2', async () => {
    await setup();
    const r = await runCli(['--home', dash.home, 'start', '--http', 'host:port']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--http: Expected [HOST:]PORT');
  });
});
