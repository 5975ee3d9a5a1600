/** `querybatch failed [list|show NAME]`: the files in failed/, or one with its SQL and error. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { QueryBatchError } from '../../errors.js';
import { print, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';
import { formatFailedDetail, formatFailedList } from '../format.js';

export const failedCommand: CommandModule<GlobalArgs, FailedArgs> = {
  command: 'failed [action] [name]',
  describe: 'List the files in failed/, or show one with its SQL and error',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .positional('action', { choices: ['list', 'show'] as const, default: 'list' as const, describe: 'list (default) or show NAME' })
    .positional('name', { type: 'string', describe: 'For show: a file name as `failed list` prints it' })
    .option('show-params', { type: 'boolean', default: false, describe: 'show: print the param values (hidden by default)' })
    .check((a) => {
      if (a.action === 'show' && (a.name === undefined || a.name === '')) throw new QueryBatchError('CONFIG_INVALID', 'Expected `failed show NAME` with the name of a file in failed/; got no name');
      if (a.action === 'list' && a.name !== undefined) throw new QueryBatchError('CONFIG_INVALID', `Expected no name after \`failed list\`; got ${JSON.stringify(a.name)} (did you mean \`failed show ${a.name}\`?)`);
      return true;
    })
    .example('$0 failed', 'every failed file with its class, id, datasource, age, attempts and last error')
    .example('$0 failed show failed-01M81875YNJMPGVYQNQ96CYM8R.batchsql', 'its SQL, params (redacted) and the full error');
}

type FailedArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<FailedArgs>): Promise<void> {
  if (args.action === 'show') {
    const detail = await withQueryBatch(args, (qb) => qb.failedFile(args.name!, { showParams: args['show-params'] }));
    print(args, detail, formatFailedDetail(detail));
  } else {
    const files = await withQueryBatch(args, (qb) => qb.failed());
    print(args, files, formatFailedList(files));
  }
}
