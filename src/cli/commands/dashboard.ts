/** `querybatch dashboard`: serves /metrics (and the dashboard, later) until SIGINT/SIGTERM. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_HOST, DEFAULT_PORT } from '../../http/defaults.js';
import type { DashboardHandle } from '../../http/server.js';
import { QueryBatch } from '../../querybatch.js';
import { EXIT_OK, optionsFrom, print, untilSignal, wholeNumberFlag, type ArgsOf, type GlobalArgs } from '../common.js';

export const dashboardCommand: CommandModule<GlobalArgs, DashboardArgs> = {
  command: 'dashboard',
  describe: 'Serve the dashboard pages and Prometheus /metrics over HTTP (docs/dashboard.md), until SIGINT/SIGTERM',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .option('host', { type: 'string', describe: `Address to bind; any but 127.0.0.1, ::1 or localhost needs a token (default: ${DEFAULT_HOST})` })
    .option('port', { type: 'string', describe: `Port; 0 picks a free one (default: ${DEFAULT_PORT})` })
    .option('token', { type: 'string', describe: 'Token every request must carry (default: dashboard.token, or $QUERYBATCH_DASHBOARD_TOKEN)' })
    .option('read-only', { type: 'boolean', default: false, describe: 'Offer no actions' })
    .check((a) => portOf(a) !== null)
    .example('$0 dashboard --port 9464', 'then scrape http://127.0.0.1:9464/metrics');
}

type DashboardArgs = ArgsOf<typeof builder>;

function portOf(args: { port?: string }): number | undefined {
  return wholeNumberFlag(args.port, '--port', 0);
}

async function handler(args: ArgumentsCamelCase<DashboardArgs>): Promise<void> {
  const qb = new QueryBatch(optionsFrom(args, process.env));
  try {
    await untilSignal(async (signal) => {
      const port = portOf(args);
      const server = await qb.serveDashboard({
        ...(args.host !== undefined && { host: args.host }),
        ...(port !== undefined && { port }),
        ...(args.token !== undefined && { token: args.token }),
        readOnly: args['read-only'],
        // This process runs nothing: its run counters would stay at zero.
        runMetrics: false,
      });
      sayListening(args, server);
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      await server.close();
      print(args, { event: 'stopped' }, 'querybatch dashboard stopped');
    });
  } finally {
    await qb.close();
  }
  process.exitCode = EXIT_OK;
}

/** The started line: the URL, and whether a token is asked. */
export function sayListening(args: GlobalArgs, server: DashboardHandle, token = server.tokenRequired): void {
  print(args, { event: 'listening', url: server.url, metrics: `${server.url}metrics`, token }, `querybatch dashboard on ${server.url} (metrics: ${server.url}metrics${token ? '; token required' : ''})`);
}
