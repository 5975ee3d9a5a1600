#!/usr/bin/env node
/**
 * The command line. Only src/cli* deals with the process: arguments, environment,
 * signals, exit codes, TTY output.
 */
import { resolve } from 'node:path';
import yargs from 'yargs';
import type { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { CONFIG_FILE_NAME } from './config.js';
import { QueryBatchError, isQueryBatchError } from './errors.js';
import type { RunSummary, SpoolOptions } from './interfaces.js';
import { QueryBatch } from './querybatch.js';
import { decodeParams, type Params, type Priority, type WireParams } from './spool/record.js';
import { initHome } from './ops/init.js';
import type { LogEntry, LogFilter } from './ops/log-reader.js';
import { formatProgress } from './cli/progress.js';
import { ago, formatFailedDetail, formatFailedList, formatJobStatus, formatRespool, formatResult, formatStatus, formatSummary, oneLine } from './cli/format.js';
import type { RunReason } from './daemon/schedule.js';
import { EXIT_FAILURES, EXIT_OK, EXIT_USAGE, optionsFrom, print, readStdin, timeOption, untilSignal, version, withQueryBatch, type GlobalArgs } from './cli/common.js';

function paramsFrom(param: string[] | undefined, paramsJson: string | undefined): Params {
  if (paramsJson === undefined) return param ?? [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(paramsJson);
  } catch (error) {
    throw new QueryBatchError('UNSERIALIZABLE_PARAM', `Expected --params to be a JSON array or object; ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object') {
    throw new QueryBatchError('UNSERIALIZABLE_PARAM', `Expected --params to be a JSON array or object; got ${JSON.stringify(parsed)}`);
  }
  try {
    return decodeParams(parsed as WireParams);
  } catch (error) {
    throw new QueryBatchError('UNSERIALIZABLE_PARAM', (error as Error).message.replace(/^Expected params/, 'Expected --params'));
  }
}

/** Draws the progress bar on stderr (a TTY) for runs that last more than a moment. */
function progressBar(stream: NodeJS.WriteStream): { onProgress: (p: { done: number; total: number }) => void; finish(): void } {
  const started = performance.now();
  let shown = false;
  let last = 0;
  return {
    onProgress: (p) => {
      const now = performance.now();
      if (now - started < PROGRESS_AFTER_MS || (now - last < PROGRESS_EVERY_MS && p.done < p.total)) return;
      last = now;
      shown = true;
      stream.write(`\r${formatProgress({ ...p, elapsedMs: now - started }, (stream.columns || 80) - 1)}\u001b[K`);
    },
    finish: () => {
      if (shown) stream.write('\r\u001b[K');
    },
  };
}
/** The bar appears once a run has gone on this long, and is redrawn at most this often. */
const PROGRESS_AFTER_MS = 500;
const PROGRESS_EVERY_MS = 100;

function printLogEntry(args: GlobalArgs, entry: LogEntry): void {
  process.stdout.write((args.json ? JSON.stringify(entry.record) : entry.line) + '\n');
}

export function buildCli(argv: string[]): Argv<GlobalArgs> {
  return yargs(argv)
    .scriptName('querybatch')
    .usage('querybatch [--home DIR] [--config FILE] <command> [--json]\n\nSpools SQL statements to disk and runs them later, serially and in order, on MySQL/MariaDB.')
    .option('home', { type: 'string', describe: 'Home directory holding spool/, failed/, logs/ (default: $QUERYBATCH_HOME or the current directory)' })
    .option('config', { type: 'string', describe: `Config file (default: <home>/${CONFIG_FILE_NAME})` })
    .option('json', { type: 'boolean', default: false, describe: 'Print machine-readable JSON' })
    .command(
      'spool [sql]',
      'Write a statement to the spool; prints its id',
      (y) => y
        .positional('sql', { type: 'string', describe: 'The SQL; "-" or none reads it from standard input' })
        .option('datasource', { alias: 'd', type: 'string', describe: 'Datasource name (default: the configured default)' })
        .option('param', { alias: 'p', type: 'string', array: true, describe: 'A positional parameter value, as a string (repeatable, in order)' })
        .option('params', { type: 'string', describe: 'All parameters as JSON: an array for ?, an object for :name; {"$date":…}, {"$bytes":base64}, {"$bigint":"…"} tags allowed' })
        .option('webhook', { type: 'string', describe: 'An http(s) URL told (signed JSON POST) when this statement succeeds or fails' })
        .option('timeout-ms', { type: 'number', describe: 'Stop the statement on the server after this many ms (default: the configured timeoutMs, 5 minutes)' })
        .option('capture-result', { type: 'boolean', describe: 'Keep the result rows (a background SELECT) as pages, for querybatch result ID' })
        .option('priority', { type: 'string', choices: ['normal', 'immediate'], describe: 'immediate: run before every normal statement of its datasource, and at once under a running start' })
        .conflicts('param', 'params')
        .example('$0 spool "INSERT INTO audit (user, action) VALUES (?, ?)" -p alice -p login', '')
        .example(`$0 spool --params '[1, {"$date": "2026-01-01T00:00:00.000Z"}]' "INSERT INTO t (a, d) VALUES (?, ?)"`, ''),
      async (args) => {
        let sql = args.sql;
        // yargs parses a lone "-" as an empty string: look at the raw arguments instead.
        if (sql === undefined || argv.includes('-')) {
          if (process.stdin.isTTY) throw new QueryBatchError('EMPTY_SQL', 'Expected SQL as an argument or on standard input; got neither');
          sql = await readStdin();
        }
        const params = paramsFrom(args.param, args.params);
        const options: SpoolOptions = {
          ...(args.datasource !== undefined && { datasource: args.datasource }),
          ...(args.webhook !== undefined && { webhook: args.webhook }),
          ...(args.timeoutMs !== undefined && { timeoutMs: args.timeoutMs }),
          ...(args.priority !== undefined && { priority: args.priority as Priority }),
          ...(args.captureResult === true && { captureResult: true }),
        };
        const id = await withQueryBatch(args, (qb) => qb.spool(sql, params, options));
        print(args, { id }, id);
      },
    )
    .command(
      'run',
      'Run everything waiting now; prints the summary (exit 1 when anything failed)',
      (y) => y
        .option('datasource', { alias: 'd', type: 'string', describe: 'Only this datasource' })
        .option('limit', { type: 'number', describe: 'At most N statements per datasource' })
        .check((a) => {
          if (a.limit !== undefined && !(Number.isSafeInteger(a.limit) && a.limit > 0)) {
            throw new QueryBatchError('CONFIG_INVALID', `Expected --limit to be a whole number > 0; got ${String(a.limit)}`);
          }
          return true;
        }),
      async (args) => {
        const bar = process.stderr.isTTY && !args.json ? progressBar(process.stderr) : null;
        const summary = await untilSignal((signal) => withQueryBatch(args, (qb) => qb.run({
          ...(args.datasource !== undefined && { datasource: args.datasource }),
          ...(args.limit !== undefined && { limit: args.limit }),
          signal,
          ...(bar && { onProgress: bar.onProgress }),
        }).finally(() => bar?.finish())));
        print(args, summary, formatSummary(summary));
        process.exitCode = summary.sqlFailed + summary.connectionFailed + summary.uncertain > 0 ? EXIT_FAILURES : EXIT_OK;
      },
    )
    .command(
      'result <id>',
      'The captured result of a job spooled with --capture-result: its pages, or one page\'s rows',
      (y) => y
        .positional('id', { type: 'string', demandOption: true, describe: 'The job id' })
        .option('page', { type: 'number', describe: 'Print this page\'s rows (from 1), one JSON array per line' }),
      async (args) => {
        const id = args.id;
        if (args.page !== undefined) {
          const n = args.page;
          const page = await withQueryBatch(args, (qb) => qb.resultPage(id, n));
          if (args.json) process.stdout.write(JSON.stringify(page, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
          else for (const row of page.rows) process.stdout.write(JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
          return;
        }
        const manifest = await withQueryBatch(args, (qb) => qb.result(id));
        print(args, manifest, formatResult(manifest));
      },
    )
    .command(
      'status [id]',
      'Pending per datasource, oldest pending age, failed counts, last run; with an id, what became of that job',
      (y) => y
        .positional('id', { type: 'string', describe: 'A job id (as spool prints): queued (with its position), running, succeeded, failed or unknown' }),
      async (args) => {
        if (args.id !== undefined) {
          const id = args.id;
          const job = await withQueryBatch(args, (qb) => qb.status(id));
          print(args, job, formatJobStatus(job));
          return;
        }
        const report = await withQueryBatch(args, (qb) => qb.status());
        print(args, report, formatStatus(report));
      },
    )
    .command(
      'start',
      'Run on a schedule (cron) and watch spool/ for drop-ins, until SIGINT/SIGTERM',
      (y) => y
        .option('cron', { type: 'string', describe: 'Cron expression, 5 fields or 6 with seconds first (default: schedule.cron, "*/5 * * * *")' })
        .option('timezone', { type: 'string', describe: 'IANA time zone for the cron expression (default: the machine\'s)' })
        .option('start-delay', { type: 'number', describe: 'Milliseconds before the first run (default: schedule.startDelayMs, 10000)' })
        .option('run-on-drop', { type: 'boolean', describe: 'Run a batch soon after a file is dropped into spool/ instead of at the next scheduled run' })
        .option('watch', { type: 'boolean', describe: 'Watch spool/ for drop-ins (--no-watch: only the schedule)' })
        .check((a) => {
          if (a['start-delay'] !== undefined && !(Number.isSafeInteger(a['start-delay']) && a['start-delay'] >= 0)) {
            throw new QueryBatchError('CONFIG_INVALID', `Expected --start-delay to be a whole number of milliseconds >= 0; got ${String(a['start-delay'])}`);
          }
          return true;
        })
        .example('$0 start --cron "*/30 * * * * *" --run-on-drop', 'every 30 seconds, and soon after each drop-in'),
      async (args) => {
        const qb = new QueryBatch(optionsFrom(args, process.env));
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
        const s = qb.config.schedule;
        // Signals are handled from the start: one that comes while starting stops it too.
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
            say({ event: 'stopped' }, 'querybatch stopped');
            resolveStopped();
          }, (error: unknown) => {
            onError(error);
            process.exit(EXIT_FAILURES);
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          let handle;
          try {
            handle = await qb.start({
              ...(args.cron !== undefined && { cron: args.cron }),
              ...(args.timezone !== undefined && { timezone: args.timezone }),
              ...(args['start-delay'] !== undefined && { startDelayMs: args['start-delay'] }),
              ...(args['run-on-drop'] !== undefined && { runOnDrop: args['run-on-drop'] }),
              ...(args.watch !== undefined && { watch: args.watch }),
              onRun,
              onError,
            });
          } catch (error) {
            if (stopping && isQueryBatchError(error, 'CLOSED')) {
              await stopped; // stopped while starting: that is a clean stop
              process.exitCode = EXIT_OK;
              return;
            }
            await qb.close();
            throw error;
          }
          if (!stopping) {
            const runOnDrop = args['run-on-drop'] ?? s.runOnDrop;
            const watching = args.watch ?? s.watch;
            const delay = args['start-delay'] ?? s.startDelayMs;
            say(
              { event: 'started', home: qb.config.home, cron: handle.cron, firstRunInMs: delay, nextRun: handle.nextRun()?.toISOString() ?? null, watch: watching, runOnDrop, pid: process.pid },
              `querybatch started: home ${qb.config.home}, cron "${handle.cron}", first run in ${ago(delay)}, ${watching ? `watching spool/ (drop-ins run ${runOnDrop ? 'soon after they settle' : 'at the next scheduled run'})` : 'not watching spool/'}; SIGINT/SIGTERM stops`,
            );
          }
          await stopped;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        process.exitCode = EXIT_OK;
      },
    )
    .command(
      'failed [action] [name]',
      'List the files in failed/, or show one with its SQL and error',
      (y) => y
        .positional('action', { choices: ['list', 'show'] as const, default: 'list' as const, describe: 'list (default) or show NAME' })
        .positional('name', { type: 'string', describe: 'For show: a file name as `failed list` prints it' })
        .option('show-params', { type: 'boolean', default: false, describe: 'show: print the param values (hidden by default)' })
        .check((a) => {
          if (a.action === 'show' && (a.name === undefined || a.name === '')) throw new QueryBatchError('CONFIG_INVALID', 'Expected `failed show NAME` with the name of a file in failed/; got no name');
          if (a.action === 'list' && a.name !== undefined) throw new QueryBatchError('CONFIG_INVALID', `Expected no name after \`failed list\`; got ${JSON.stringify(a.name)} (did you mean \`failed show ${a.name}\`?)`);
          return true;
        })
        .example('$0 failed', 'every failed file with its class, id, datasource, age, attempts and last error')
        .example('$0 failed show failed-01M81875YNJMPGVYQNQ96CYM8R.batchsql', 'its SQL, params (redacted) and the full error'),
      async (args) => {
        if (args.action === 'show') {
          const detail = await withQueryBatch(args, (qb) => qb.failedFile(args.name!, { showParams: args['show-params'] }));
          print(args, detail, formatFailedDetail(detail));
        } else {
          const files = await withQueryBatch(args, (qb) => qb.failed());
          print(args, files, formatFailedList(files));
        }
      },
    )
    .command(
      'respool [names..]',
      'Move failed files back into the spool (original id and order, attempts reset; exit 1 when any was skipped)',
      (y) => y
        .positional('names', { type: 'string', array: true, describe: 'File names in failed/ (as `failed list` prints them)' })
        .option('all', { type: 'boolean', describe: 'Every file in failed/ but the uncertain-… ones (those only by name, once checked)' })
        .option('connection', { type: 'boolean', describe: 'The connection-… files (the database could not be reached)' })
        .option('failed', { type: 'boolean', describe: 'The failed-… files (the database refused the statement)' })
        .option('since', { type: 'string', describe: 'Only files that failed at or after this time (ISO time, or an age like 2h); alone: of every kind' })
        .check((a) => {
          const names = a.names ?? [];
          if (names.length === 0 && !a.all && !a.connection && !a.failed && a.since === undefined) {
            throw new QueryBatchError('CONFIG_INVALID', 'Expected what to respool: --all, --connection, --failed, --since or file names; got none');
          }
          if (names.length > 0 && (a.all || a.connection || a.failed)) {
            throw new QueryBatchError('CONFIG_INVALID', 'Expected either file names or --all/--connection/--failed; got both');
          }
          return true;
        })
        .example('$0 respool --connection', 'after the database is back: every connection failure, in its original order'),
      async (args) => {
        const since = timeOption(args.since, '--since');
        const result = await withQueryBatch(args, (qb) => qb.respool({
          ...(args.all !== undefined && { all: args.all }),
          ...(args.connection !== undefined && { connection: args.connection }),
          ...(args.failed !== undefined && { failed: args.failed }),
          ...(since && { since }),
          ...((args.names ?? []).length > 0 && { names: args.names!.map(String) }),
        }));
        print(args, result, formatRespool(result));
        process.exitCode = result.skipped.length > 0 ? EXIT_FAILURES : EXIT_OK;
      },
    )
    .command(
      'logs',
      'Print the run summaries and errors (rotated files included), oldest first',
      (y) => y
        .option('errors', { type: 'boolean', default: false, describe: 'Only the error log' })
        .option('since', { type: 'string', describe: 'From this time on (ISO time, or an age like 15m, 2h, 7d)' })
        .option('until', { type: 'string', describe: 'Up to this time (ISO time, or an age)' })
        .option('datasource', { alias: 'd', type: 'string', describe: 'Only errors of this datasource' })
        .option('tail', { type: 'number', describe: 'Only the last N entries' })
        .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Keep printing new entries as they are written (until SIGINT/SIGTERM)' })
        .check((a) => {
          if (a.tail !== undefined && !(Number.isSafeInteger(a.tail) && a.tail >= 0)) {
            throw new QueryBatchError('CONFIG_INVALID', `Expected --tail to be a whole number >= 0; got ${String(a.tail)}`);
          }
          return true;
        })
        .example('$0 logs --errors --since 2h --json', 'the last two hours of failures, one JSON object per line'),
      async (args) => {
        const since = timeOption(args.since, '--since');
        const until = timeOption(args.until, '--until');
        const filter: LogFilter = {
          errors: args.errors,
          ...(since && { since }),
          ...(until && { until }),
          ...(args.datasource !== undefined && { datasource: args.datasource }),
          ...(args.tail !== undefined && { tail: args.tail }),
        };
        await withQueryBatch(args, async (qb) => {
          for (const entry of await qb.logs(filter)) printLogEntry(args, entry);
          if (!args.follow) return;
          const { tail: _tail, ...followFilter } = filter;
          await untilSignal((signal) => qb.followLogs(followFilter, (entry) => printLogEntry(args, entry), signal));
        });
      },
    )
    .command(
      'init',
      'Create the home layout (spool/, failed/, logs/) and a commented querybatch.config.json',
      (y) => y
        .option('url', { type: 'string', default: 'mysql://root@127.0.0.1:3306/test', describe: 'URL of datasource "main" in the sample config' }),
      async (args) => {
        const home = resolve(args.home ?? process.env.QUERYBATCH_HOME ?? process.cwd());
        const result = await initHome(home, args.url);
        if (!result.configWritten) {
          print(args, { ...result, message: 'config exists; left as it is' }, `${result.config} exists already; left as it is (nothing overwritten). Layout checked: spool/, failed/, logs/.`);
          return;
        }
        print(args, result, `created ${home}/{spool,failed,logs}/ and ${result.config}\n(keys starting with "//" are comments; edit datasources.main, then: querybatch status)`);
      },
    )
    .demandCommand(1, 'Expected a command: spool, run, start, status, result, failed, respool, logs or init')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(version)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 the run had failures, 2 usage or configuration error.\nDocs: README.md, docs/api.md, docs/guarantees.md, docs/spool-format.md, docs/logs.md') as unknown as Argv<GlobalArgs>;
}

/** A usage error found by yargs itself (unknown argument, failed check, missing command). */
class UsageError extends Error {}

export async function main(argv: string[]): Promise<void> {
  const cli = buildCli(argv)
    .exitProcess(false)
    .fail((message, error) => {
      if (error && !(isQueryBatchError(error) && error.isUsageError)) throw error;
      throw new UsageError(message || error?.message || 'usage error');
    });
  try {
    await cli.parseAsync();
  } catch (error) {
    const usage = error instanceof UsageError || (isQueryBatchError(error) && error.isUsageError);
    const message = error instanceof Error ? error.message : String(error);
    const code = isQueryBatchError(error) ? ` [${error.code}]` : '';
    process.stderr.write(`querybatch: ${message}${code}\n`);
    if (error instanceof UsageError) process.stderr.write('Run "querybatch --help" for usage.\n');
    if (!usage && !isQueryBatchError(error) && process.env.QUERYBATCH_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
    process.exitCode = usage ? EXIT_USAGE : EXIT_FAILURES;
  }
}

await main(hideBin(process.argv));
