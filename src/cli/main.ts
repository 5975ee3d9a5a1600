/**
 * The command line. Only src/cli/ deals with the process: arguments, environment,
 * signals, exit codes, TTY output. Exit codes: 0 ok, 1 the run had failures (or a
 * runtime error), 2 usage or configuration error.
 */
import type { Argv } from 'yargs';
import { CONFIG_FILE_NAME } from '../config.js';
import { isQueryBatchError } from '../errors.js';
import { EXIT_FAILURES, EXIT_USAGE, version, type GlobalArgs } from './common.js';
import { dashboardCommand } from './commands/dashboard.js';
import { failedCommand } from './commands/failed.js';
import { initCommand } from './commands/init.js';
import { logsCommand } from './commands/logs.js';
import { queueControlCommands } from './commands/queue-control.js';
import { respoolCommand } from './commands/respool.js';
import { resultCommand } from './commands/result.js';
import { runCommand } from './commands/run.js';
import { spoolCommand } from './commands/spool.js';
import { startCommand } from './commands/start.js';
import { statusCommand } from './commands/status.js';
import { yargs, type YargsFactory } from './yargs.js';

/** The parser (made by `yargs`, cli/yargs.ts): global options, the commands in the order help lists them, help, version, epilogue. */
export function buildCli(argv: string[], yargs: YargsFactory): Argv<GlobalArgs> {
  return yargs(argv)
    .scriptName('querybatch')
    .usage('querybatch [--home DIR] [--config FILE] <command> [--json]\n\nSpools SQL statements to disk and runs them later, serially and in order, on MySQL/MariaDB, PostgreSQL or SQLite.')
    .option('home', { type: 'string', describe: 'Home directory holding spool/, failed/, logs/ (default: $QUERYBATCH_HOME or the current directory)' })
    .option('config', { type: 'string', describe: `Config file (default: <home>/${CONFIG_FILE_NAME})` })
    .option('json', { type: 'boolean', default: false, describe: 'Print machine-readable JSON' })
    .command(spoolCommand(argv))
    .command(runCommand)
    .command(resultCommand)
    .command(statusCommand)
    .command(startCommand)
    .command(failedCommand)
    .command(respoolCommand)
    .command(queueControlCommands)
    .command(logsCommand)
    .command(dashboardCommand)
    .command(initCommand)
    .demandCommand(1, 'Expected a command: spool, run, start, status, result, failed, respool, pause, resume, cancel, logs, dashboard or init')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(version)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 the run had failures, 2 usage or configuration error.\nDocs: README.md, docs/api.md, docs/guarantees.md, docs/spool-format.md, docs/logs.md');
}

/** A usage error found by yargs itself (unknown argument, failed check, missing command). */
class UsageError extends Error {}

/** Parses `argv` and runs its command; prints errors on one line and sets the exit code. */
export async function main(argv: string[]): Promise<void> {
  const cli = buildCli(argv, yargs)
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
