#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import yargs from 'yargs';
import type { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { CONFIG_FILE_NAME, environmentOptions, mergeOptions, readConfigFile } from './config.js';
import { QueryBatchError, isQueryBatchError } from './errors.js';
import type { QueryBatchOptions, RunSummary, StatusReport } from './interfaces.js';
import { QueryBatch } from './querybatch.js';
import { decodeParams, type Params, type WireParams } from './spool-file.js';

/**
 * The command line. Only this file deals with the process: arguments, environment,
 * signals, exit codes, TTY output. Exit codes: 0 ok, 1 the run had failures (or a
 * runtime error), 2 usage or configuration error.
 */
const EXIT_OK = 0;
const EXIT_FAILURES = 1;
const EXIT_USAGE = 2;

interface GlobalArgs {
  home?: string;
  config?: string;
  json: boolean;
}

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Config file, then environment, then flags. */
function optionsFrom(args: GlobalArgs, env: NodeJS.ProcessEnv): QueryBatchOptions {
  const home = resolve(args.home ?? env.QUERYBATCH_HOME ?? process.cwd());
  const file = args.config !== undefined
    ? readConfigFile(resolve(args.config), true)
    : readConfigFile(join(home, CONFIG_FILE_NAME));
  const fromEnv = environmentOptions(env, Object.keys(file.datasources ?? {}));
  return { ...mergeOptions(file, fromEnv), home, configFile: false };
}

async function withQueryBatch<T>(args: GlobalArgs, use: (qb: QueryBatch) => Promise<T>): Promise<T> {
  const qb = new QueryBatch(optionsFrom(args, process.env));
  try {
    return await use(qb);
  } finally {
    await qb.close();
  }
}

function print(args: GlobalArgs, json: unknown, text: string): void {
  process.stdout.write(args.json ? JSON.stringify(json) + '\n' : text + '\n');
}

function readStdin(): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => (data += chunk));
    process.stdin.on('end', () => resolvePromise(data));
    process.stdin.on('error', reject);
  });
}

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

function ago(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function formatSummary(s: RunSummary): string {
  const lines = [`runSQL: success=${s.success}; SQLFailed=${s.sqlFailed}; ConnectedFailed=${s.connectionFailed}; SQL=${Math.round(s.totalMs)}ms; avg=${Math.round(s.avgMs)}ms`];
  for (const [name, d] of Object.entries(s.datasources)) {
    const parts = [`${d.success} ok`];
    if (d.sqlFailed > 0) parts.push(`${d.sqlFailed} failed (see failed/ and logs/querybatch-error.log)`);
    if (d.connectionError) parts.push(`stopped: cannot reach the database (${d.connectionError})`);
    if (d.busy) parts.push('skipped: another runner is draining it');
    if (d.deferred > 0) parts.push(`${d.deferred} left in spool`);
    lines.push(`  ${name}: ${parts.join(', ')}`);
  }
  if (s.adopted > 0) lines.push(`  ${s.adopted} dropped-in file(s) queued`);
  if (s.recovered > 0) lines.push(`  ${s.recovered} claim(s) of a dead runner given back to the spool`);
  return lines.join('\n');
}

function formatStatus(r: StatusReport): string {
  const lines = [`home: ${r.home}`, `pending: ${r.pendingTotal}`];
  for (const [name, p] of Object.entries(r.pending)) {
    lines.push(`  ${name}: ${p.count}${p.count > 0 ? ` (oldest ${ago(p.oldestAgeMs)} ago, ${p.oldestId})` : ''}`);
  }
  if (r.dropIns > 0) lines.push(`dropped-in, not yet queued: ${r.dropIns}`);
  if (r.active > 0) lines.push(`claimed by a runner now: ${r.active}`);
  lines.push(`failed: ${r.failed.connection} connection-, ${r.failed.failed} failed-${r.failed.other > 0 ? `, ${r.failed.other} other` : ''}`);
  const l = r.lastRun;
  lines.push(l
    ? `last run: ${l.time} success=${l.success}; SQLFailed=${l.sqlFailed}; ConnectedFailed=${l.connectionFailed}; SQL=${l.totalMs}ms; avg=${l.avgMs}ms`
    : 'last run: none logged');
  return lines.join('\n');
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
        const id = await withQueryBatch(args, (qb) => qb.spool(sql, params, args.datasource !== undefined ? { datasource: args.datasource } : {}));
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
        const controller = new AbortController();
        const stop = () => controller.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const summary = await withQueryBatch(args, (qb) => qb.run({
            ...(args.datasource !== undefined && { datasource: args.datasource }),
            ...(args.limit !== undefined && { limit: args.limit }),
            signal: controller.signal,
          }));
          print(args, summary, formatSummary(summary));
          process.exitCode = summary.sqlFailed + summary.connectionFailed > 0 ? EXIT_FAILURES : EXIT_OK;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      },
    )
    .command(
      'status',
      'Pending per datasource, oldest pending age, failed counts, last run',
      (y) => y,
      async (args) => {
        const report = await withQueryBatch(args, (qb) => qb.status());
        print(args, report, formatStatus(report));
      },
    )
    .demandCommand(1, 'Expected a command: spool, run or status')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(version)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 the run had failures, 2 usage or configuration error.\nDocs: README.md, docs/spool-format.md, docs/logs.md') as unknown as Argv<GlobalArgs>;
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
