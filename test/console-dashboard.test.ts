import { appendFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { QueryBatch } from '../src/index.js';
import type { Overview } from '../src/http/overview.js';
import { useDashboardFixture } from './dashboard-fixture.js';
import { waitFor } from './daemon-helpers.js';

/**
 * The dashboard pages of issue 14 over HTTP against MariaDB: the bulk respool of a filter,
 * pause/resume, in flight and blocked on the overview, the runs chart, the job timeline,
 * /logs and its event stream, and the 401 page a browser gets.
 */

const dash = useDashboardFixture('console_http');
const { t, serve, setup } = dash;

/** A page's CSRF cookie pair and the form's value (they are the same token). */
async function csrfFrom(url: string): Promise<{ cookie: string; csrf: string; html: string }> {
  const res = await fetch(url);
  const html = await res.text();
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  return { cookie, csrf, html };
}

async function post(url: string, cookie: string, form: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { cookie }, body: new URLSearchParams(form), redirect: 'manual' });
}

/**
 * failed/ with 5 files: on a, two duplicate keys (id 1) and one missing table; on b, one
 * duplicate key (id 2) and one missing table.
 */
async function fiveFailed(qb: QueryBatch): Promise<void> {
  await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
  await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
  await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
  await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'a' });
  await qb.spool('INSERT INTO t (id) VALUES (2)', [], { datasource: 'b' });
  await qb.spool('INSERT INTO t (id) VALUES (2)', [], { datasource: 'b' });
  await qb.spool('INSERT INTO no_such_table (id) VALUES (2)', [], { datasource: 'b' });
  await qb.run();
  expect(await qb.failed()).toHaveLength(5);
}

describe('bulk respool of a filter', () => {
  it('respools exactly the files the filter keeps (not uncertain ones), says how many; without CSRF 403', async () => {
    const qb = await setup();
    await fiveFailed(qb);
    const failed = await qb.failed();
    const dupA = failed.filter((f) => f.datasource === 'a' && f.lastError?.code === 'ER_DUP_ENTRY').map((f) => f.name);
    expect(dupA).toHaveLength(2);
    // One more match, made uncertain: the bulk action must leave it (it may have run).
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    await qb.run();
    const third = (await qb.failed()).find((f) => f.datasource === 'a' && f.lastError?.code === 'ER_DUP_ENTRY' && !dupA.includes(f.name))!;
    const uncertain = third.name.replace(/^failed-/, 'uncertain-');
    await rename(join(dash.home, 'failed', third.name), join(dash.home, 'failed', uncertain));

    const server = await serve(qb);
    const { cookie, csrf, html } = await csrfFrom(`${server.url}failed?datasource=a&text=duplicate`);
    expect(html).toContain('Respool all 2 of this filter');
    expect(html).toContain('1 uncertain left out');

    const forged = await post(`${server.url}failed/respool`, cookie, { csrf: 'x'.repeat(32), datasource: 'a', text: 'duplicate' });
    expect(forged.status).toBe(403);
    expect((await readdir(join(dash.home, 'failed'))).length).toBe(6);

    const res = await post(`${server.url}failed/respool`, cookie, { csrf, datasource: 'a', text: 'duplicate', class: '' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/failed?done=bulk&n=2&skipped=1&datasource=a&text=duplicate');
    const left = await readdir(join(dash.home, 'failed'));
    expect(left.sort()).toEqual(failed.filter((f) => !dupA.includes(f.name)).map((f) => f.name).concat(uncertain).sort());
    expect((await qb.status()).pending.a?.count).toBe(2);
    expect((await qb.status()).pending.b?.count ?? 0).toBe(0);
    const after = await fetch(new URL(res.headers.get('location')!, server.url), { headers: { cookie } });
    expect(await after.text()).toContain('Respooled 2 file(s) of the filter; 1 left in failed/');
  });

  it('read-only: no bulk button, and the POST gets 403', async () => {
    const qb = await setup();
    await fiveFailed(qb);
    const server = await serve(qb, { readOnly: true });
    const { cookie, html } = await csrfFrom(`${server.url}failed`);
    expect(html).not.toContain('Respool all');
    // A valid pair (the form's value is the cookie's): refused for being read-only, not for the token.
    const res = await post(`${server.url}failed/respool`, cookie, { csrf: cookie.split('=')[1]! });
    expect(res.status).toBe(403);
    expect(await readdir(join(dash.home, 'failed'))).toHaveLength(5);
  });

  it('the list is paginated newest first (100 a page) and the filter counts every file', async () => {
    const qb = await setup();
    for (let i = 0; i < 130; i++) await qb.spool('INSERT INTO no_such_table (id) VALUES (?)', [i], { datasource: i % 2 === 0 ? 'a' : 'b' });
    await qb.run();
    const all = await qb.failed(); // oldest first
    const server = await serve(qb);
    const first = await (await fetch(`${server.url}failed`)).text();
    expect(first).toContain('130 of 130, 1–100 shown');
    expect(first.match(/<tr><td><a href="\/failed\//g)).toHaveLength(100);
    expect(first.indexOf(all.at(-1)!.name)).toBeGreaterThan(0);
    expect(first).not.toContain(all[0]!.name);
    const second = await (await fetch(`${server.url}failed?page=2`)).text();
    expect(second.match(/<tr><td><a href="\/failed\//g)).toHaveLength(30);
    expect(second).toContain(all[0]!.name);
    const onlyB = await (await fetch(`${server.url}failed?datasource=b`)).text();
    expect(onlyB).toContain('65 of 130');
    expect(onlyB).toContain('Respool all 65 of this filter');
  });
});

describe('overview', () => {
  it('Pause and Resume buttons: POST with CSRF write and remove the marker; read-only hides and refuses them', async () => {
    const qb = await setup();
    const server = await serve(qb);
    const { cookie, csrf, html } = await csrfFrom(server.url);
    expect(html).toContain('action="/datasources/a/pause"');
    expect((await post(`${server.url}datasources/a/pause`, cookie, { csrf: 'y'.repeat(32) })).status).toBe(403);
    expect((await qb.status()).paused).toEqual([]);
    const res = await post(`${server.url}datasources/a/pause`, cookie, { csrf });
    expect(res.status).toBe(303);
    expect((await qb.status()).paused).toEqual(['a']);
    const o = (await (await fetch(`${server.url}api/overview`)).json()) as Overview;
    expect(o.datasources.find((d) => d.name === 'a')?.paused).toBe(true);
    expect((await post(`${server.url}datasources/nope/pause`, cookie, { csrf })).status).toBe(404);
    expect((await post(`${server.url}datasources/a/resume`, cookie, { csrf })).status).toBe(303);
    expect((await qb.status()).paused).toEqual([]);

    await server.close();
    const ro = await serve(qb, { readOnly: true });
    const page = await csrfFrom(ro.url);
    expect(page.html).not.toContain('/datasources/a/pause');
    expect(page.csrf).toBe('');
    expect((await post(`${ro.url}datasources/a/pause`, cookie, { csrf })).status).toBe(403);
    expect((await qb.status()).paused).toEqual([]);
  });

  it('in flight: the job a runner executes now, with its claim time on the job page', async () => {
    const qb = await setup();
    const id = await qb.spool('DO SLEEP(2)', [], { datasource: 'a' });
    const spooled = Date.now();
    await new Promise((r) => setTimeout(r, 1_200)); // so the claim time cannot be the spool time
    const server = await serve(qb);
    const running = qb.run();
    const o = await waitFor(async () => {
      const res = (await (await fetch(`${server.url}api/overview`)).json()) as Overview;
      return res.datasources.find((d) => d.name === 'a')?.inFlight.jobs === 1 ? res : undefined;
    }, 5_000, 'the job in flight');
    expect(o.datasources.find((d) => d.name === 'a')?.inFlight).toMatchObject({ jobs: 1, first: id });
    expect(o.datasources.find((d) => d.name === 'b')?.inFlight.jobs).toBe(0);
    const job = await (await fetch(`${server.url}jobs/${id}`)).text();
    const claimed = /data-step="claimed"><b>claimed<\/b> <time>([^<]*)<\/time>/.exec(job)?.[1];
    expect(Date.parse(claimed ?? '')).toBeGreaterThan(spooled + 1_000);
    expect(Date.parse(claimed ?? '')).toBeLessThanOrEqual(Date.now());
    expect(job).toMatch(/by runner /);
    await running;
    const done = (await (await fetch(`${server.url}api/overview`)).json()) as Overview;
    expect(done.datasources.find((d) => d.name === 'a')?.inFlight).toEqual({ jobs: 0, first: null, runner: null });
  });

  it('blocked (strictOrder): the file that blocks the datasource', async () => {
    const qb = await setup({ datasources: { a: { url: t.url, strictOrder: true }, b: t.url } });
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'a' });
    await qb.spool('INSERT INTO t (id) VALUES (5)', [], { datasource: 'a' });
    await qb.run();
    const [blocker] = await qb.failed();
    const server = await serve(qb);
    const o = (await (await fetch(`${server.url}api/overview`)).json()) as Overview;
    expect(o.datasources.find((d) => d.name === 'a')?.blocked).toBe(blocker!.name);
    expect(o.datasources.find((d) => d.name === 'b')?.blocked).toBe(null);
    expect(await (await fetch(server.url)).text()).toContain(`blocked (strictOrder) by <a data-f="blocked-link" href="/failed/${blocker!.name}">`);
  });

  it('the chart draws one bar per logged run, failures stacked on successes', async () => {
    const qb = await setup();
    const server = await serve(qb);
    expect(await (await fetch(server.url)).text()).not.toContain('<svg id="chart"');
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    await qb.run();
    await qb.spool('INSERT INTO t (id) VALUES (2)', [], { datasource: 'a' });
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'a' });
    await qb.run();
    // The logger writes a summary line a moment after run() resolves.
    const svg = await waitFor(async () => {
      const chart = /<svg id="chart"[\s\S]*?<\/svg>/.exec(await (await fetch(server.url)).text())?.[0] ?? '';
      return chart.match(/<g class="run">/g)?.length === 2 ? chart : undefined;
    }, 5_000, 'two runs in the chart');
    expect(svg.match(/fill="#e66a6a"/g)).toHaveLength(1);
    expect(svg).toMatch(/: 1 succeeded, 1 failed/);
    expect(svg.match(/<circle /g)).toHaveLength(2);
  });
});

describe('job page', () => {
  it('a timeline: spooled from the id, ran and succeeded from the outcome; failed with attempts and the error', async () => {
    const qb = await setup();
    const ok = await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    const bad = await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    const queued = await qb.spool('INSERT INTO t (id) VALUES (9)', [], { datasource: 'b' });
    await qb.pause('b');
    const before = Date.now();
    await qb.run();
    const server = await serve(qb);
    const steps = async (id: string) => [...(await (await fetch(`${server.url}jobs/${id}`)).text()).matchAll(/data-step="(\w+)"><b>\w+<\/b> <time>([^<]*)<\/time>(?:<div class="muted">([^<]*)<\/div>)?/g)].map((m) => ({ step: m[1], at: m[2], text: m[3] }));
    const s = await steps(ok);
    expect(s.map((x) => x.step)).toEqual(['spooled', 'ran', 'succeeded']);
    expect(Date.parse(s[0]!.at!)).toBeLessThanOrEqual(before);
    expect(Date.parse(s[2]!.at!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(s[1]!.at!)).toBeLessThanOrEqual(Date.parse(s[2]!.at!));
    expect(s[2]!.text).toBe('1 row affected');
    const f = await steps(bad);
    expect(f.map((x) => x.step)).toEqual(['spooled', 'failed']);
    expect(f[1]!.text).toMatch(/^sql after 1 attempt: ER_DUP_ENTRY Duplicate entry/);
    const q = await steps(queued);
    expect(q.map((x) => x.step)).toEqual(['spooled', 'queued']);
    expect(q[1]!.text).toBe('position 1 in b');
  });
});

/** Reads server-sent events from a response until `until` says stop; returns their data lines. */
async function events(res: Response, until: (data: string[]) => boolean, timeoutMs = 8_000, soft = false): Promise<string[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const data: string[] = [];
  let text = '';
  const deadline = Date.now() + timeoutMs;
  while (!until(data)) {
    const left = deadline - Date.now();
    const next: { value?: Uint8Array; done: boolean } | null = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), Math.max(0, left)))]);
    if (next === null) {
      if (soft) break;
      throw new Error(`timed out; got ${JSON.stringify(data)}`);
    }
    const { value, done } = next;
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let at;
    while ((at = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, at);
      text = text.slice(at + 2);
      const line = block.split('\n').find((l) => l.startsWith('data: '));
      const isEvent = block.split('\n').some((l) => l.startsWith('event: '));
      if (line && !isEvent) data.push(line.slice(6));
      if (isEvent) data.push('<ready>');
    }
  }
  await reader.cancel();
  return data;
}

describe('/logs', () => {
  it('the page starts with the last lines; the stream sends what a run appends afterwards (errors=1: error lines only)', async () => {
    const qb = await setup();
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    await qb.run();
    const server = await serve(qb);
    // The logger writes the summary line a moment after run() resolves.
    const page = await waitFor(async () => {
      const text = await (await fetch(`${server.url}logs`)).text();
      return text.includes('<div class="line run">') ? text : undefined;
    }, 5_000, 'the first summary line');
    expect(page.match(/<div class="line run">/g)).toHaveLength(1);
    expect(page).toContain("new EventSource('/logs/stream'+location.search)");

    const all = await fetch(`${server.url}logs/stream`);
    expect(all.headers.get('content-type')).toContain('text/event-stream');
    const errors = await fetch(`${server.url}logs/stream?errors=1`);
    // Both streams have started following (offset = the files' sizes) once `ready` arrived.
    const allEvents = events(all, (d) => d.filter((x) => x !== '<ready>').length >= 2);
    // Until a second line, or 3 s: only the error line may come.
    const errorEvents = events(errors, (d) => d.filter((x) => x !== '<ready>').length >= 2, 3_000, true);
    await new Promise((r) => setTimeout(r, 300));
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'a' });
    await qb.run();
    const got = (await allEvents).filter((x) => x !== '<ready>').map((x) => JSON.parse(x) as { log: string; line: string });
    expect(got.map((e) => e.log)).toEqual(['error', 'run']);
    expect(got[0]!.line).toContain('no_such_table');
    const gotErrors = (await errorEvents).filter((x) => x !== '<ready>').map((x) => JSON.parse(x) as { log: string });
    expect(gotErrors.map((e) => e.log)).toEqual(['error']);
  });

  it('tailEntries reads the last lines from the end of a long log, lines across its chunks intact', async () => {
    const { tailEntries } = await import('../src/ops/log-reader.js');
    const { formatSummaryLine } = await import('../src/ops/log-format.js');
    await setup();
    const log = join(dash.home, 'querybatch.log');
    const summary = (i: number) => formatSummaryLine(new Date(Date.UTC(2026, 10, 29, 10, 0, i)), { success: i, sqlFailed: 0, connectionFailed: 0, totalMs: i, avgMs: 1 }) + '\n';
    // 3 MB of lines that are not summaries, then 3,000 summaries (~300 KB: lines cut by the 64 KB chunks), then a long line.
    await writeFile(log, 'x'.repeat(200).concat('\n').repeat(15_000));
    await appendFile(log, [...Array(3_000).keys()].map(summary).join('') + 'y'.repeat(100_000) + '\n');
    const got = await tailEntries(log, 2_500);
    expect(got.map((e) => (e.record as { success: number }).success)).toEqual([...Array(2_500).keys()].map((i) => i + 500));
    expect((await tailEntries(log, 5_000))).toHaveLength(3_000);
  });
});

describe('401 for a browser', () => {
  it('Accept: text/html gets a page saying how to pass the token; other clients the plain line', async () => {
    const qb = await setup();
    const server = await serve(qb, { token: 'tok-html' });
    const browser = await fetch(server.url, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(browser.status).toBe(401);
    expect(browser.headers.get('content-type')).toContain('text/html');
    const page = await browser.text();
    expect(page).toContain('A token is needed');
    expect(page).toContain('?token=&lt;token&gt;');
    expect(page).not.toContain('href="/failed"');
    const api = await fetch(`${server.url}metrics`);
    expect(api.status).toBe(401);
    expect(api.headers.get('content-type')).toContain('text/plain');
    expect(await api.text()).toMatch(/^401 Unauthorized/);
    expect((await fetch(`${server.url}api/overview`, { headers: { accept: 'application/json' } })).headers.get('content-type')).toContain('text/plain');
  });
});
