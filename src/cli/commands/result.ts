/** `querybatch result <id>`: a captured result's pages, or one page's rows. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { print, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';
import { formatResult } from '../format.js';

export const resultCommand: CommandModule<GlobalArgs, ResultArgs> = {
  command: 'result <id>',
  describe: 'The captured result of a job spooled with --capture-result: its pages, or one page\'s rows',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .positional('id', { type: 'string', demandOption: true, describe: 'The job id' })
    .option('page', { type: 'number', describe: 'Print this page\'s rows (from 1), one JSON array per line' });
}

type ResultArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<ResultArgs>): Promise<void> {
  const id = args.id;
  if (args.page !== undefined) {
    const n = args.page;
    const page = await withQueryBatch(args, (qb) => qb.resultPage(id, n));
    if (args.json) process.stdout.write(toJson(page) + '\n');
    else for (const row of page.rows) process.stdout.write(toJson(row) + '\n');
    return;
  }
  const manifest = await withQueryBatch(args, (qb) => qb.result(id));
  print(args, manifest, formatResult(manifest));
}

/** JSON with bigints written as strings. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
