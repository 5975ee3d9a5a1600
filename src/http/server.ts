import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { QueryBatchError } from '../errors.js';
import type { ResolvedConfig, RunSummary } from '../interfaces.js';
import type { Outcome } from '../ops/outcomes.js';
import type { Layout } from '../spool/layout.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './defaults.js';
import { COOKIE_NAME, admit, cookieOf, isLoopback, sessionValue } from './auth.js';
import { SpoolMetrics } from './metrics.js';
import { CSRF_COOKIE, CSRF_FIELD, csrfMatches, isCsrfToken, newCsrfToken } from './csrf.js';
import { readOverview } from './overview.js';
import { errorPage, failedDetailPage, failedListPage, filterFailed, jobPage, overviewPage } from './pages.js';
import type { JobStatus } from '../interfaces.js';
import type { DeleteFailedResult, FailedFile, FailedFileDetail, RespoolResult, RespoolSelection } from '../ops/failed-files.js';
import type { LogEntry, LogFilter } from '../ops/log-reader.js';

/**
 * The dashboard's HTTP server (docs/dashboard.md): the HTML pages (overview, failed files,
 * a job), /api/overview for the overview's poller, `/metrics` in Prometheus text format and
 * `/healthz`. Pages are rendered on the server (http/pages.ts) with one small inline script:
 * no front-end build, nothing to ship but this file's dependencies.
 */

export interface ServeDashboardOptions {
  /** Address to bind. Any other than loopback requires a token. @default '127.0.0.1' */
  readonly host?: string;
  /** Port; 0 picks a free one (the handle's `url` says which). @default 9464 */
  readonly port?: number;
  /** Token every request but /healthz must carry. @default config `dashboard.token` (or QUERYBATCH_DASHBOARD_TOKEN), else none */
  readonly token?: string | null;
  /** Show no actions (Respool, Delete) and refuse their POSTs with 403. @default false */
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
  logs(filter: LogFilter): Promise<LogEntry[]>;
}

/** How many run summaries the overview shows. */
const RUNS_SHOWN = 10;

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

/** The routes, behind the token check. */
function buildApp(metrics: SpoolMetrics, token: string | null, readOnly: boolean, ops: DashboardOps, spoolDir: string): Hono {
  const app = new Hono();
  // Liveness, without the token: a probe (load balancer, Kubernetes) rarely carries one, and the answer says nothing about the queue.
  app.get('/healthz', (c) => c.text('ok\n'));
  if (token !== null) {
    app.use('*', async (c, next) => {
      const how = admit(token, { authorization: c.req.header('authorization'), cookie: cookieOf(c.req.header('cookie'), COOKIE_NAME), queryToken: c.req.query('token') });
      if (how === 'denied') {
        c.header('WWW-Authenticate', 'Bearer realm="querybatch"');
        return c.text('401 Unauthorized: send "Authorization: Bearer <token>", or open a page once with ?token=<token>\n', 401);
      }
      if (how === 'query') c.header('Set-Cookie', `${COOKIE_NAME}=${sessionValue(token)}; Path=/; HttpOnly; SameSite=Strict`, { append: true });
      await next();
    });
  }
  app.get('/metrics', async (c) => {
    const text = await metrics.metrics();
    return c.body(text, 200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
  });

  const overview = async () => {
    const runs = (await ops.logs({ tail: 20 * RUNS_SHOWN })).flatMap((e) => (e.record.log === 'run' ? [e.record] : [])).slice(-RUNS_SHOWN);
    return readOverview(spoolDir, await metrics.snapshot(), runs);
  };
  /** The page's CSRF token: the browser's cookie, or a new one set now. */
  const csrfOf = (c: Context): string => {
    const known = cookieOf(c.req.header('cookie'), CSRF_COOKIE);
    if (isCsrfToken(known)) return known;
    const fresh = newCsrfToken();
    c.header('Set-Cookie', `${CSRF_COOKIE}=${fresh}; Path=/; HttpOnly; SameSite=Strict`, { append: true });
    return fresh;
  };
  const html = (c: Context, body: string, status: 200 | 403 | 404 = 200) => c.html(body, status, { 'Cache-Control': 'no-store' });

  app.get('/', async (c) => html(c, overviewPage(await overview(), readOnly)));
  app.get('/api/overview', async (c) => c.json(await overview(), 200, { 'Cache-Control': 'no-store' }));
  app.get('/failed', async (c) => {
    const all = await ops.failed();
    const filter = { class: c.req.query('class'), datasource: c.req.query('datasource'), text: c.req.query('text') };
    const datasources = [...new Set(all.flatMap((f) => (f.datasource === null ? [] : [f.datasource])))].sort();
    const done = c.req.query('done');
    const notice = done === 'respooled' || done === 'deleted' ? `${done === 'respooled' ? 'Respooled' : 'Deleted'} ${c.req.query('name') ?? ''}` : undefined;
    return html(c, failedListPage(filterFailed(all, filter), all.length, filter, datasources, readOnly, notice));
  });
  app.get('/failed/:name', async (c) => {
    const showParams = c.req.query('showParams') === '1';
    const detail = await ops.failedFile(c.req.param('name'), { showParams });
    return html(c, failedDetailPage(detail, showParams, csrfOf(c), readOnly));
  });
  app.post('/failed/:name/:verb{respool|delete}', async (c) => {
    if (readOnly) return html(c, errorPage(403, 'This dashboard is read-only.', readOnly), 403);
    const body = await c.req.parseBody();
    if (!csrfMatches(cookieOf(c.req.header('cookie'), CSRF_COOKIE), body[CSRF_FIELD])) {
      return html(c, errorPage(403, 'Missing or wrong CSRF token: reload the page and try again.', readOnly), 403);
    }
    const name = c.req.param('name');
    const verb = c.req.param('verb');
    const result = verb === 'respool' ? await ops.respool({ names: [name] }) : await ops.deleteFailed([name]);
    const skipped = result.skipped[0];
    if (skipped !== undefined) return html(c, errorPage(404, `${name} was not ${verb === 'respool' ? 'respooled' : 'deleted'}: ${skipped.reason}`, readOnly), 404);
    return c.redirect(`/failed?done=${verb === 'respool' ? 'respooled' : 'deleted'}&name=${encodeURIComponent(name)}`, 303);
  });
  app.get('/jobs/:id', async (c) => html(c, jobPage(await ops.status(c.req.param('id')), readOnly)));

  app.notFound((c) => c.text('404 Not Found: this server serves /, /failed, /jobs/<id>, /api/overview, /metrics and /healthz\n', 404));
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
  const app = buildApp(metrics, token, readOnly, source.ops, source.layout.spoolDir);
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
