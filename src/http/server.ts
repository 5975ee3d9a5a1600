import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { QueryBatchError } from '../errors.js';
import type { ResolvedConfig, RunSummary } from '../interfaces.js';
import type { Outcome } from '../ops/outcomes.js';
import type { Layout } from '../spool/layout.js';
import { COOKIE_NAME, admit, cookieOf, isLoopback, sessionValue } from './auth.js';
import { SpoolMetrics } from './metrics.js';

/**
 * The dashboard's HTTP server (docs/dashboard.md): `/metrics` in Prometheus text format,
 * `/healthz`, and `/` saying what is served. The pages come later, on this server.
 */

export interface ServeDashboardOptions {
  /** Address to bind. Any other than loopback requires a token. @default '127.0.0.1' */
  readonly host?: string;
  /** Port; 0 picks a free one (the handle's `url` says which). @default 9464 */
  readonly port?: number;
  /** Token every request but /healthz must carry. @default config `dashboard.token` (or QUERYBATCH_DASHBOARD_TOKEN), else none */
  readonly token?: string | null;
  /** Show no actions (the pages to come honour it; nothing is changed through this server yet). @default false */
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

/** The events of a QueryBatch the run counters are fed by (querybatch.ts QueryBatchEvents). */
export interface RunEventSource {
  on(event: 'succeeded' | 'failed', listener: (outcome: Outcome) => void): unknown;
  on(event: 'run:end', listener: (summary: RunSummary) => void): unknown;
  off(event: 'succeeded' | 'failed', listener: (outcome: Outcome) => void): unknown;
  off(event: 'run:end', listener: (summary: RunSummary) => void): unknown;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 9464;

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
function buildApp(metrics: SpoolMetrics, token: string | null, readOnly: boolean): Hono {
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
      if (how === 'query') c.header('Set-Cookie', `${COOKIE_NAME}=${sessionValue(token)}; Path=/; HttpOnly; SameSite=Strict`);
      await next();
    });
  }
  app.get('/metrics', async (c) => {
    const text = await metrics.metrics();
    return c.body(text, 200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
  });
  app.get('/', (c) => c.text(indexText(readOnly)));
  app.notFound((c) => c.text('404 Not Found: this server serves /, /metrics and /healthz\n', 404));
  app.onError((error, c: Context) => c.text(`500 ${error.message}\n`, 500));
  return app;
}

function indexText(readOnly: boolean): string {
  return [
    'querybatch dashboard',
    '',
    '/metrics  Prometheus metrics (text format): pending jobs, oldest pending age, failed files, paused; run counters in the daemon',
    '/healthz  liveness ("ok"; needs no token)',
    '',
    `Mode: ${readOnly ? 'read-only' : 'read-write'}. The HTML pages are not served yet. See docs/dashboard.md.`,
    '',
  ].join('\n');
}

/** Starts the server; resolves once it listens. Throws what resolveDashboard throws, or HTTP_LISTEN_FAILED. */
export async function serveDashboard(
  source: { readonly layout: Layout; readonly config: ResolvedConfig; readonly events: RunEventSource },
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
  const app = buildApp(metrics, token, readOnly);
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
