/** `querybatch start`: runs on a schedule and on drop-ins until SIGINT/SIGTERM. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { isQueryBatchError } from '../../errors.js';
import type { RunSummary } from '../../interfaces.js';
import type { RunReason, ScheduleHandle } from '../../daemon/schedule.js';
import { QueryBatch } from '../../querybatch.js';
import { EXIT_FAILURES, EXIT_OK, optionsFrom, print, wholeNumberFlag, type ArgsOf, type GlobalArgs } from '../common.js';
import { delayText, formatSummary, oneLine } from '../format.js';
import { parseListen } from '../../http/auth.js';
import { DEFAULT_HOST, type DashboardHandle } from '../../http/server.js';
import { QueryBatchError } from '../../errors.js';
import { sayListening } from './dashboard.js';

export const startCommand: CommandModule<GlobalArgs, StartArgs> = {
  command: 'start',
  describe: 'Run on a schedule (cron), or as soon as jobs are spooled (--continuous), and watch spool/ for drop-ins, until SIGINT/SIGTERM',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .option('cron', { type: 'string', describe: 'Cron expression, 5 fields or 6 with seconds first (default: schedule.cron, "*/5 * * * *")' })
    .option('timezone', { type: 'string', describe: 'IANA time zone for the cron expression (default: the machine\'s)' })
    .option('start-delay', { type: 'string', describe: 'Milliseconds before the first run (default: schedule.startDelayMs, 10000)' })
    .option('run-on-drop', { type: 'boolean', describe: 'Run a batch soon after a file is dropped into spool/ instead of at the next scheduled run' })
    .option('watch', { type: 'boolean', describe: 'Watch spool/ for drop-ins (--no-watch: only the schedule)' })
    .option('continuous', { type: 'boolean', describe: 'Run as soon as any process spools a job, not only on the cron (schedule.continuous); after a connection failure, jobs wait for the cron' })
    .option('http', { type: 'string', describe: `Serve /metrics with this process's run counters on [HOST:]PORT (host default ${DEFAULT_HOST}; another needs dashboard.token or $QUERYBATCH_DASHBOARD_TOKEN)` })
    .check((a) => startDelayOf(a) !== null && httpOf(a) !== null)
    .example('$0 start --cron "*/30 * * * * *" --run-on-drop', 'every 30 seconds, and soon after each drop-in')
    .example('$0 start --continuous', 'each job as soon as it is spooled; connection retries every 5 minutes');
}

type StartArgs = ArgsOf<typeof builder>;

/** --start-delay in milliseconds, if given. Throws CONFIG_INVALID. */
function startDelayOf(args: { 'start-delay'?: string }): number | undefined {
  return wholeNumberFlag(args['start-delay'], '--start-delay', 0, ' of milliseconds');
}

/** --http as host and port, if given. Throws CONFIG_INVALID. */
function httpOf(args: { http?: string }): { host: string; port: number } | undefined {
  if (args.http === undefined) return undefined;
  try {
    return parseListen(args.http, DEFAULT_HOST);
  } catch (error) {
    throw new QueryBatchError('CONFIG_INVALID', `--http: ${(error as Error).message}`);
  }
}

async function handler(args: ArgumentsCamelCase<StartArgs>): Promise<void> {
  const qb = new QueryBatch(optionsFrom(args, process.env));
  const report = reporter(args);
  const listen = httpOf(args);
  // Listening first: a port in use or a missing token stops start before anything runs.
  let server: DashboardHandle | null = null;
  try {
    if (listen !== undefined) server = await qb.serveDashboard({ ...listen, runMetrics: true });
  } catch (error) {
    await qb.close();
    throw error;
  }
  // Signals are handled from the start: one that comes while starting stops it too.
  const stop = stopOnSignals(qb, report);
  try {
    if (server !== null) sayListening(args, server);
    let handle;
    try {
      handle = await qb.start({
        ...(args.cron !== undefined && { cron: args.cron }),
        ...(args.timezone !== undefined && { timezone: args.timezone }),
        ...(args['start-delay'] !== undefined && { startDelayMs: startDelayOf(args) }),
        ...(args['run-on-drop'] !== undefined && { runOnDrop: args['run-on-drop'] }),
        ...(args.watch !== undefined && { watch: args.watch }),
        ...(args.continuous !== undefined && { continuous: args.continuous }),
        onRun: report.onRun,
        onError: report.onError,
      });
    } catch (error) {
      if (stop.requested && isQueryBatchError(error, 'CLOSED')) {
        await stop.stopped; // stopped while starting: that is a clean stop
        process.exitCode = EXIT_OK;
        return;
      }
      await qb.close();
      throw error;
    }
    if (!stop.requested) sayStarted(args, qb, handle, report);
    await stop.stopped;
  } finally {
    stop.release();
    await server?.close();
  }
  process.exitCode = EXIT_OK;
}

interface Reporter {
  /** Prints an event: `json` with --json, else `text`. */
  say(json: Record<string, unknown>, text: string): void;
  /** A run that did anything: its summary. */
  readonly onRun: (summary: RunSummary, reason: RunReason) => void;
  /** An error of a run or of the watcher: an event with --json, else a line on stderr. */
  readonly onError: (error: unknown) => void;
}

/** What start prints: events on stdout (JSON lines with --json); without --json, errors on stderr. */
function reporter(args: ArgumentsCamelCase<StartArgs>): Reporter {
  const say = (json: Record<string, unknown>, text: string) => print(args, json, text);
  const onRun = (summary: RunSummary, reason: RunReason) => {
    const did = summary.success + summary.sqlFailed + summary.connectionFailed + summary.adopted + summary.recovered;
    if (did === 0) return;
    say({ event: 'run', reason, ...summary }, `${summary.finishedAt} ${reason} run\n${formatSummary(summary)}`);
  };
  const onError = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    if (args.json) say({ event: 'error', code: isQueryBatchError(error) ? error.code : ((error as NodeJS.ErrnoException).code ?? null), message }, '');
    else process.stderr.write(`querybatch: ${oneLine(message)}${isQueryBatchError(error) ? ` [${error.code}]` : ''}\n`);
  };
  return { say, onRun, onError };
}

interface SignalStop {
  /** Whether SIGINT or SIGTERM has come. */
  readonly requested: boolean;
  /** Settles once the QueryBatch has closed after a signal. */
  readonly stopped: Promise<void>;
  /** Removes the signal handlers. */
  release(): void;
}

/**
 * SIGINT/SIGTERM for start: the first closes the QueryBatch (after the statement in flight);
 * a second one, or schedule.stopTimeoutMs without the close finishing, exits the process.
 */
function stopOnSignals(qb: QueryBatch, report: Reporter): SignalStop {
  const s = qb.config.schedule;
  let stopping = false;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`querybatch: ${signal} again: exiting now; a statement in flight may not have finished (its job is given back by the next run)\n`);
      process.exit(EXIT_FAILURES);
    }
    stopping = true;
    process.stderr.write(`querybatch: ${signal}: stopping after the statement in flight (again to force)\n`);
    const timer = setTimeout(() => {
      process.stderr.write(`querybatch: still not stopped after ${s.stopTimeoutMs} ms (schedule.stopTimeoutMs): exiting; the job in flight is given back by the next run\n`);
      process.exit(EXIT_FAILURES);
    }, s.stopTimeoutMs);
    timer.unref();
    void qb.close().then(() => {
      clearTimeout(timer);
      report.say({ event: 'stopped' }, 'querybatch stopped');
      resolveStopped();
    }, (error: unknown) => {
      report.onError(error);
      process.exit(EXIT_FAILURES);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get requested() {
      return stopping;
    },
    stopped,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The started event: home, cron, first run, whether spool/ is watched and what a drop-in does. */
function sayStarted(args: ArgumentsCamelCase<StartArgs>, qb: QueryBatch, handle: ScheduleHandle, report: Reporter): void {
  const s = qb.config.schedule;
  const runOnDrop = args['run-on-drop'] ?? s.runOnDrop;
  const watching = args.watch ?? s.watch;
  const continuous = args.continuous ?? s.continuous;
  const delay = startDelayOf(args) ?? s.startDelayMs;
  report.say(
    { event: 'started', home: qb.config.home, cron: handle.cron, firstRunInMs: delay, nextRun: handle.nextRun()?.toISOString() ?? null, watch: watching, runOnDrop, continuous, pid: process.pid },
    `querybatch started: home ${qb.config.home}, cron "${handle.cron}", first run in ${delayText(delay)}, ${continuous ? 'continuous (a job runs as soon as it is spooled), ' : ''}${watching ? `watching spool/ (drop-ins run ${runOnDrop ? 'soon after they settle' : 'at the next scheduled run'})` : 'not watching spool/'}; SIGINT/SIGTERM stops`,
  );
}
