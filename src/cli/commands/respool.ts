/** `querybatch respool`: moves failed files back into the spool. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { QueryBatchError } from '../../errors.js';
import { EXIT_FAILURES, EXIT_OK, print, timeOption, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';
import { formatRespool } from '../format.js';

export const respoolCommand: CommandModule<GlobalArgs, RespoolArgs> = {
  command: 'respool [names..]',
  describe: 'Move failed files back into the spool (original id and order, attempts reset; exit 1 when any was skipped)',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
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
    .example('$0 respool --connection', 'after the database is back: every connection failure, in its original order');
}

type RespoolArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<RespoolArgs>): Promise<void> {
  const since = await timeOption(args.since, '--since');
  const result = await withQueryBatch(args, (qb) => qb.respool({
    ...(args.all !== undefined && { all: args.all }),
    ...(args.connection !== undefined && { connection: args.connection }),
    ...(args.failed !== undefined && { failed: args.failed }),
    ...(since && { since }),
    ...((args.names ?? []).length > 0 && { names: args.names!.map(String) }),
  }));
  print(args, result, formatRespool(result));
  process.exitCode = result.skipped.length > 0 ? EXIT_FAILURES : EXIT_OK;
}
