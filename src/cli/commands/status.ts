/** `querybatch status [id]`: the home's state, or what became of one job. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { print, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';
import { formatJobStatus, formatStatus } from '../format.js';

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status [id]',
  describe: 'Pending per datasource, oldest pending age, failed counts, last run; with an id, what became of that job',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .positional('id', { type: 'string', describe: 'A job id (as spool prints): queued (with its position), running, succeeded, failed or unknown' });
}

type StatusArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<StatusArgs>): Promise<void> {
  if (args.id !== undefined) {
    const id = args.id;
    const job = await withQueryBatch(args, (qb) => qb.status(id));
    print(args, job, formatJobStatus(job));
    return;
  }
  const report = await withQueryBatch(args, (qb) => qb.status());
  print(args, report, formatStatus(report));
}
