/** `querybatch logs`: the run summaries and errors, oldest first, optionally followed. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { QueryBatchError } from '../../errors.js';
import type { LogEntry, LogFilter } from '../../ops/log-reader.js';
import { timeOption, untilSignal, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';

export const logsCommand: CommandModule<GlobalArgs, LogsArgs> = {
  command: 'logs',
  describe: 'Print the run summaries and errors (rotated files included), oldest first',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
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
    .example('$0 logs --errors --since 2h --json', 'the last two hours of failures, one JSON object per line');
}

type LogsArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<LogsArgs>): Promise<void> {
  const since = await timeOption(args.since, '--since');
  const until = await timeOption(args.until, '--until');
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
}

function printLogEntry(args: GlobalArgs, entry: LogEntry): void {
  process.stdout.write((args.json ? JSON.stringify(entry.record) : entry.line) + '\n');
}
