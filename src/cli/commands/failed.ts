/** `querybatch failed [list|show NAME|delete NAME...]`: the files in failed/, one with its SQL and error, or deleting some. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { QueryBatchError } from '../../errors.js';
import { EXIT_FAILURES, EXIT_OK, print, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';
import { formatDeleteFailed, formatFailedDetail, formatFailedList } from '../format.js';

export const failedCommand: CommandModule<GlobalArgs, FailedArgs> = {
  command: 'failed [action] [names..]',
  describe: 'List the files in failed/, show one with its SQL and error, or delete some',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .positional('action', { choices: ['list', 'show', 'delete'] as const, default: 'list' as const, describe: 'list (default), show NAME, or delete NAME...' })
    .positional('names', { type: 'string', array: true, describe: 'For show: a file name as `failed list` prints it; for delete: one or more' })
    .option('show-params', { type: 'boolean', default: false, describe: 'show: print the param values (hidden by default)' })
    .check((a) => {
      const names = (a.names ?? []).map(String);
      if (a.action === 'show' && (names.length !== 1 || names[0] === '')) throw new QueryBatchError('CONFIG_INVALID', `Expected \`failed show NAME\` with the name of one file in failed/; got ${names.length === 0 ? 'no name' : `${names.length} names`}`);
      if (a.action === 'delete' && names.length === 0) throw new QueryBatchError('CONFIG_INVALID', 'Expected `failed delete NAME...` with names of files in failed/; got no name');
      if (a.action === 'list' && names.length > 0) throw new QueryBatchError('CONFIG_INVALID', `Expected no name after \`failed list\`; got ${JSON.stringify(names[0])} (did you mean \`failed show ${names[0]}\`?)`);
      return true;
    })
    .example('$0 failed', 'every failed file with its class, id, datasource, age, attempts and last error')
    .example('$0 failed show failed-01M81875YNJMPGVYQNQ96CYM8R.batchsql', 'its SQL, params (redacted) and the full error')
    .example('$0 failed delete failed-01M81875YNJMPGVYQNQ96CYM8R.batchsql', 'delete it (exit 1 when a name was skipped)');
}

type FailedArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<FailedArgs>): Promise<void> {
  const names = (args.names ?? []).map(String);
  if (args.action === 'show') {
    const detail = await withQueryBatch(args, (qb) => qb.failedFile(names[0]!, { showParams: args['show-params'] }));
    print(args, detail, formatFailedDetail(detail));
  } else if (args.action === 'delete') {
    const result = await withQueryBatch(args, (qb) => qb.deleteFailed(names));
    print(args, result, formatDeleteFailed(result));
    process.exitCode = result.skipped.length > 0 ? EXIT_FAILURES : EXIT_OK;
  } else {
    const files = await withQueryBatch(args, (qb) => qb.failed());
    print(args, files, formatFailedList(files));
  }
}
