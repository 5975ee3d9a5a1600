import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import fs from 'fs-extra';
import { QueryBatchError } from '../errors.js';
import type { ResolvedConfig, RunSummary } from '../interfaces.js';
import type { Outcome } from '../ops/outcomes.js';
import type { Layout } from '../spool/layout.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './defaults.js';
import { COOKIE_NAME, admit, cookieOf, isLoopback, sessionValue } from './auth.js';
import { SpoolMetrics } from './metrics.js';
import { CSRF_COOKIE, CSRF_FIELD, csrfMatches, isCsrfToken, newCsrfToken } from './csrf.js';
import { readInFlight, readOverview } from './overview.js';
import { CHART_RUNS, LOG_LINES_SHOWN, errorPage, failedDetailPage, failedListPage, failedListView, filterFailed, jobPage, logsPage, newestFirst, overviewPage, pageOf, unauthorizedPage, type FailedFilter, type FailedListView } from './pages.js';
import type { JobStatus } from '../interfaces.js';
import { describeFailed, failedNames, type DeleteFailedResult, type FailedFile, type FailedFileDetail, type RespoolResult, type RespoolSelection } from '../ops/failed-files.js';
import { followLogs, tailEntries, type LogEntry } from '../ops/log-reader.js';
import { findJob } from '../ops/job-status.js';
import { blockingFiles, strictDatasources } from '../run/strict-order.js';
import { idTime } from '../spool/id.js';

/**
 * The dashboard's HTTP server (docs/dashboard.md): the HTML pages (overview, failed files,
 * a job, the logs), /api/overview for the overview's poller, /logs/stream (server-sent
 * events) for the logs page, `/metrics` in Prometheus text format and `/healthz`. Pages are rendered on the server (http/pages.ts) with one small inline script:
 * no front-end build, nothing to ship but this file's dependencies.
 */

export interface ServeDashboardOptions {
  /** Address to bind. Any other than loopback requires a token. @default '127.0.0.1' */
  readonly host?: string;
  /** Port; 0 picks a free one (the handle's `url` says which). @default 9464 */
  readonly port?: number;
  /** Token every request but /healthz must carry. @default config `dashboard.token` (or QUERYBATCH_DASHBOARD_TOKEN), else none */
  readonly token?: string | null;
  /** Show no actions (Respool, Delete, Pause, Resume) and refuse their POSTs with 403. @default false */
  readonly readOnly?: boolean;
  /** Serve the run counters (jobs_total, statement and run durations) fed by this process's runs. @default true */
  readonly runMetrics?: boolean;
  /** How long a snapshot of the spool serves scrapes. @default 2000 */
  readonly metricsCacheMs?: number;
}

export interface DashboardHandle {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Whether requests must carry a token. */
  readonly tokenRequired: boolean;
  /** Stops listening and closes open connections; detaches from the QueryBatch. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What the pages read and do, from a QueryBatch (querybatch.ts has each). */
export interface DashboardOps {
  failed(): Promise<FailedFile[]>;
  failedFile(name: string, options: { showParams?: boolean }): Promise<FailedFileDetail>;
  respool(selection: RespoolSelection): Promise<RespoolResult>;
  deleteFailed(names: readonly string[]): Promise<DeleteFailedResult>;
  status(id: string): Promise<JobStatus>;
  pause(datasource: string): Promise<void>;
  resume(datasource: string): Promise<void>;
}

/** The events of a QueryBatch the run counters are fed by (querybatch.ts QueryBatchEvents). */
export interface RunEventSource {
  on(event: 'succeeded' | 'failed', listener: (outcome: Outcome) => void): unknown;
  on(event: 'run:end', listener: (summary: RunSummary) => void): unknown;
  off(event: 'succeeded' | 'failed', listener: (outcome: Outcome) => void): unknown;
  off(event: 'run:end', listener: (summary: RunSummary) => void): unknown;
}

export { DEFAULT_HOST, DEFAULT_PORT };

/** Host, port and token as the server uses them. Throws CONFIG_INVALID, or DASHBOARD_TOKEN_REQUIRED for a non-loopback host without a token. */
export function resolveDashboard(options: ServeDashboardOptions, config: ResolvedConfig): { host: string; port: number; token: string | null; readOnly: boolean } {
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected \`port\` to be a whole number from 0 to 65535; got ${String(port)}`);
  }
  if (options.token === '') throw new QueryBatchError('CONFIG_INVALID', 'Expected `token` to be a non-empty string; got ""');
  const token = options.token ?? config.dashboard.token;
  if (token === null && !isLoopback(host)) {
    throw new QueryBatchError('DASHBOARD_TOKEN_REQUIRED', `Expected a token to listen on ${host} (anything but 127.0.0.1, ::1 or localhost is reachable from other machines); give --token, dashboard.token in the config, or QUERYBATCH_DASHBOARD_TOKEN`);
  }
  return { host, port, token, readOnly: options.readOnly ?? false };
}

/** failedListView from one listing of failed/ and a read of the page's files; newest id first, names without one last. */
async function pageByNames(layout: Layout, config: ResolvedConfig, filter: FailedFilter, page: number): Promise<FailedListView> {
  const names = await failedNames(layout);
  const kept = names.filter((n) => !filter.class || n.class === filter.class).sort(newestFirst);
  const { p, pages, slice } = pageOf(kept, page);
  const files = await describeFailed(layout, config, slice.map((n) => n.name));
  const datasources = [...new Set([...Object.keys(config.datasources), ...files.flatMap((f) => (f.datasource === null ? [] : [f.datasource]))])].sort();
  return { files, matched: kept.length, total: names.length, uncertain: kept.filter((n) => n.class === 'uncertain').length, page: p, pages, filter, datasources };
}

/** Sets a cookie only this site's pages send back, never to scripts (both the session and the CSRF cookie). */
function setCookie(c: Pick<Context, 'header'>, name: string, value: string): void {
  c.header('Set-Cookie', `${name}=${value}; Path=/; HttpOnly; SameSite=Strict`, { append: true });
}

/** Every request needs the token (header, cookie, or `?token=` once, which sets the cookie); else 401. */
function requireToken(app: Hono, token: string): void {
  app.use('*', async (c, next) => {
    const how = admit(token, { authorization: c.req.header('authorization'), cookie: cookieOf(c.req.header('cookie'), COOKIE_NAME), queryToken: c.req.query('token') });
    if (how === 'denied') {
      c.header('WWW-Authenticate', 'Bearer realm="querybatch"');
      // A browser gets a page that says how to pass the token; scrapers and scripts the plain line.
      if (/\btext\/html\b/.test(c.req.header('accept') ?? '')) return c.html(unauthorizedPage(), 401, { 'Cache-Control': 'no-store' });
      return c.text('401 Unauthorized: send "Authorization: Bearer <token>", or open a page once with ?token=<token>\n', 401);
    }
    if (how === 'query') setCookie(c, COOKIE_NAME, sessionValue(token));
    await next();
  });
}

/** The failed list's notice after an action redirected to it (`done=respooled|deleted|bulk`), if any. */
function failedNotice(c: Context): string | undefined {
  const done = c.req.query('done');
  if (done === 'respooled' || done === 'deleted') return `${done === 'respooled' ? 'Respooled' : 'Deleted'} ${c.req.query('name') ?? ''}`;
  if (done !== 'bulk') return undefined;
  const skipped = Number(c.req.query('skipped'));
  return `Respooled ${Number(c.req.query('n')) || 0} file(s) of the filter${skipped > 0 ? `; ${skipped} left in failed/ (uncertain, or not a job that can run here: see each file)` : ''}`;
}

/** When a running job was claimed: its claim's ctime, set by the rename that took it into spool/.active (a rename keeps mtime, not ctime). */
async function claimTime(layout: Layout, config: ResolvedConfig, status: Extract<JobStatus, { state: 'running' }>): Promise<string | null> {
  const found = await findJob(join(layout.activeDir, status.runner, status.datasource), status.id, config.limits);
  const st = found ? await fs.promises.stat(found.path).catch(() => null) : null;
  return st ? st.ctime.toISOString() : null;
}

/**
 * GET /logs/stream: the log lines written from now on, as server-sent events (followLogs tails
 * each file from the offset it has read to). Ends when the client goes, or when the server
 * closes (close() aborts every stream in `streams`).
 */
function logStream(c: Context, layout: Layout, streams: Set<AbortController>): Response {
  return streamSSE(c, async (stream) => {
    const aborted = new AbortController();
    streams.add(aborted);
    aborted.signal.addEventListener('abort', () => streams.delete(aborted), { once: true });
    stream.onAbort(() => aborted.abort());
    const queue: LogEntry[] = [];
    let wake: (() => void) | null = null;
    const following = followLogs(layout, { errors: c.req.query('errors') === '1' }, (entry) => {
      queue.push(entry);
      wake?.();
    }, aborted.signal);
    await stream.writeSSE({ event: 'ready', data: '{}' });
    while (!aborted.signal.aborted) {
      const entry = queue.shift();
      if (entry !== undefined) {
        await stream.writeSSE({ data: JSON.stringify({ log: entry.record.log, time: entry.record.time, line: entry.line }) });
        continue;
      }
      // Wait for a line, the client to go, or 15 s (then a comment keeps proxies from closing an idle stream).
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, 15_000);
        aborted.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      clearTimeout(timer);
      wake = null;
      if (queue.length === 0 && !aborted.signal.aborted) await stream.write(': keep-alive\n\n');
    }
    await following;
  });
}

/** The routes, behind the token check. */
function buildApp(metrics: SpoolMetrics, token: string | null, readOnly: boolean, ops: DashboardOps, layout: Layout, config: ResolvedConfig, streams: Set<AbortController>): Hono {
  const app = new Hono();
  // Liveness, without the token: a probe (load balancer, Kubernetes) rarely carries one, and the answer says nothing about the queue.
  app.get('/healthz', (c) => c.text('ok\n'));
  if (token !== null) requireToken(app, token);
  app.get('/metrics', async (c) => {
    const text = await metrics.metrics();
    return c.body(text, 200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
  });

  const strict = strictDatasources(config);
  const overview = async () => {
    // The run log read from its end: a long log costs what its last lines do.
    const [tail, inFlight, blocked, snapshot] = await Promise.all([tailEntries(layout.runLog, CHART_RUNS), readInFlight(layout.activeDir), blockingFiles(layout, config, strict), metrics.snapshot()]);
    const runs = tail.flatMap((e) => (e.record.log === 'run' ? [e.record] : []));
    return readOverview(layout.spoolDir, snapshot, runs, { inFlight, blocked });
  };
  /** The page's CSRF token: the browser's cookie, or a new one set now. */
  const csrfOf = (c: Context): string => {
    const known = cookieOf(c.req.header('cookie'), CSRF_COOKIE);
    if (isCsrfToken(known)) return known;
    const fresh = newCsrfToken();
    setCookie(c, CSRF_COOKIE, fresh);
    return fresh;
  };
  const html = (c: Context, body: string, status: 200 | 400 | 403 | 404 = 200) => c.html(body, status, { 'Cache-Control': 'no-store' });
  /** The refusal for a POST, or null when it may go on: read-only, or a CSRF field that does not match its cookie. */
  const refusal = (c: Context, body: Record<string, unknown>) => {
    if (readOnly) return html(c, errorPage(403, 'This dashboard is read-only.', readOnly), 403);
    if (!csrfMatches(cookieOf(c.req.header('cookie'), CSRF_COOKIE), body[CSRF_FIELD])) {
      return html(c, errorPage(403, 'Missing or wrong CSRF token: reload the page and try again.', readOnly), 403);
    }
    return null;
  };
  const field = (body: Record<string, unknown>, name: string) => (typeof body[name] === 'string' && body[name] !== '' ? body[name] : undefined);

  app.get('/', async (c) => {
    const done = c.req.query('done');
    const notice = (done === 'paused' || done === 'resumed') ? `${done === 'paused' ? 'Paused' : 'Resumed'} ${c.req.query('datasource') ?? ''}` : undefined;
    return html(c, overviewPage(await overview(), readOnly, csrfOf(c), notice));
  });
  app.get('/api/overview', async (c) => c.json(await overview(), 200, { 'Cache-Control': 'no-store' }));
  app.post('/datasources/:name/:verb{pause|resume}', async (c) => {
    const refused = refusal(c, await c.req.parseBody());
    if (refused) return refused;
    const name = c.req.param('name');
    if (!Object.hasOwn(config.datasources, name)) return html(c, errorPage(404, `Expected a configured datasource (${Object.keys(config.datasources).join(', ')}); got ${JSON.stringify(name)}`, readOnly), 404);
    const verb = c.req.param('verb');
    await (verb === 'pause' ? ops.pause(name) : ops.resume(name));
    return c.redirect(`/?done=${verb === 'pause' ? 'paused' : 'resumed'}&datasource=${encodeURIComponent(name)}`, 303);
  });
  app.get('/failed', async (c) => {
    const filter = { class: c.req.query('class'), datasource: c.req.query('datasource'), text: c.req.query('text') };
    const notice = failedNotice(c);
    const page = Number(c.req.query('page') ?? '1');
    // Without a datasource or text filter, the names say enough to count, sort and page: only the page's files are read.
    const view = filter.datasource || filter.text?.trim() ? failedListView(await ops.failed(), filter, page) : await pageByNames(layout, config, filter, page);
    return html(c, failedListPage(view, readOnly, csrfOf(c), notice));
  });
  // Respools exactly what the list shows for this filter, on every page; uncertain files stay (one by one, after a check).
  app.post('/failed/respool', async (c) => {
    const body = await c.req.parseBody();
    const refused = refusal(c, body);
    if (refused) return refused;
    const filter = { class: field(body, 'class'), datasource: field(body, 'datasource'), text: field(body, 'text') };
    const matched = filterFailed(await ops.failed(), filter);
    const names = matched.filter((f) => f.class !== 'uncertain').map((f) => f.name);
    const result = names.length > 0 ? await ops.respool({ names }) : { respooled: [], skipped: [] };
    const skipped = matched.length - result.respooled.length;
    const back = new URLSearchParams({ done: 'bulk', n: String(result.respooled.length), skipped: String(skipped) });
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) back.set(k, v);
    return c.redirect(`/failed?${back.toString()}`, 303);
  });
  app.get('/failed/:name', async (c) => {
    const showParams = c.req.query('showParams') === '1';
    const detail = await ops.failedFile(c.req.param('name'), { showParams });
    return html(c, failedDetailPage(detail, showParams, csrfOf(c), readOnly));
  });
  app.post('/failed/:name/:verb{respool|delete}', async (c) => {
    const refused = refusal(c, await c.req.parseBody());
    if (refused) return refused;
    const name = c.req.param('name');
    const verb = c.req.param('verb');
    const result = verb === 'respool' ? await ops.respool({ names: [name] }) : await ops.deleteFailed([name]);
    const skipped = result.skipped[0];
    if (skipped !== undefined) return html(c, errorPage(404, `${name} was not ${verb === 'respool' ? 'respooled' : 'deleted'}: ${skipped.reason}`, readOnly), 404);
    return c.redirect(`/failed?done=${verb === 'respool' ? 'respooled' : 'deleted'}&name=${encodeURIComponent(name)}`, 303);
  });
  app.get('/jobs/:id', async (c) => {
    const status = await ops.status(c.req.param('id'));
    const claimedAt = status.state === 'running' ? await claimTime(layout, config, status) : null;
    return html(c, jobPage(status, { spooledAt: new Date(idTime(status.id)).toISOString(), claimedAt }, readOnly));
  });
  app.get('/logs', async (c) => {
    const errors = c.req.query('errors') === '1';
    // Each log read from its end (no whole-file read), merged in time order.
    const logs = errors ? [layout.errorLog] : [layout.runLog, layout.errorLog];
    const entries = (await Promise.all(logs.map((log) => tailEntries(log, LOG_LINES_SHOWN)))).flat()
      .sort((a, b) => Date.parse(a.record.time) - Date.parse(b.record.time)).slice(-LOG_LINES_SHOWN);
    return html(c, logsPage(entries, errors, readOnly));
  });
  app.get('/logs/stream', (c) => logStream(c, layout, streams));

  app.notFound((c) => c.text('404 Not Found: this server serves /, /failed, /jobs/<id>, /logs, /api/overview, /metrics and /healthz\n', 404));
  app.onError((error, c: Context) => {
    const code = error instanceof QueryBatchError ? error.code : undefined;
    const status = code === 'FAILED_FILE_NOT_FOUND' ? 404 : code === 'INVALID_ID' || code === 'CONFIG_INVALID' ? 400 : 500;
    return c.html(errorPage(status, error.message, readOnly), status);
  });
  return app;
}

/** Starts the server; resolves once it listens. Throws what resolveDashboard throws, or HTTP_LISTEN_FAILED. */
export async function serveDashboard(
  source: { readonly layout: Layout; readonly config: ResolvedConfig; readonly events: RunEventSource; readonly ops: DashboardOps },
  options: ServeDashboardOptions = {},
): Promise<DashboardHandle> {
  const { host, port, token, readOnly } = resolveDashboard(options, source.config);
  const metrics = new SpoolMetrics({ layout: source.layout, config: source.config, ...(options.metricsCacheMs !== undefined && { cacheMs: options.metricsCacheMs }) });
  const releasers: Array<() => void | Promise<void>> = [];
  if (options.runMetrics ?? true) {
    metrics.enableRunMetrics();
    const onOutcome = (outcome: Outcome) => metrics.observeOutcome(outcome);
    const onRun = (summary: RunSummary) => metrics.observeRun(summary);
    source.events.on('succeeded', onOutcome);
    source.events.on('failed', onOutcome);
    source.events.on('run:end', onRun);
    releasers.push(() => {
      source.events.off('succeeded', onOutcome);
      source.events.off('failed', onOutcome);
      source.events.off('run:end', onRun);
    });
  }
  const streams = new Set<AbortController>();
  const app = buildApp(metrics, token, readOnly, source.ops, source.layout, source.config, streams);
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    for (const release of releasers.reverse()) await release();
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new QueryBatchError('HTTP_LISTEN_FAILED', `Expected to listen on ${host}:${port}; got ${code}`, { cause: error });
  }
  releasers.push(() => new Promise<void>((resolve) => {
    for (const stream of [...streams]) stream.abort();
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  const close = () => (closing ??= (async () => {
    for (const release of releasers.reverse()) await release();
  })());
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`,
    host,
    port: bound,
    tokenRequired: token !== null,
    close,
    [Symbol.asyncDispose]: close,
  };
}
