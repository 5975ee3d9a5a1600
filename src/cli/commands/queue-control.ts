/** `querybatch pause NAME`, `resume NAME`, `cancel ID`: queue control. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { print, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';
import { oneLine } from '../format.js';

function datasourceBuilder(y: Argv<GlobalArgs>) {
  return y.positional('name', { type: 'string', demandOption: true, describe: 'A configured datasource' });
}

type DatasourceArgs = ArgsOf<typeof datasourceBuilder>;

const pauseCommand: CommandModule<GlobalArgs, DatasourceArgs> = {
  command: 'pause <name>',
  describe: 'Pause a datasource: runs (the daemon\'s too) skip it, spool keeps accepting its jobs',
  builder: (y) => datasourceBuilder(y).example('$0 pause reports', 'hold reports\' jobs during maintenance; `resume reports` lets them run'),
  handler: async (args: ArgumentsCamelCase<DatasourceArgs>) => {
    await withQueryBatch(args, (qb) => qb.pause(args.name));
    print(args, { datasource: args.name, paused: true }, `paused ${args.name}: runs skip it until \`querybatch resume ${args.name}\``);
  },
};

const resumeCommand: CommandModule<GlobalArgs, DatasourceArgs> = {
  command: 'resume <name>',
  describe: 'Resume a paused datasource: the next run drains it',
  builder: datasourceBuilder,
  handler: async (args: ArgumentsCamelCase<DatasourceArgs>) => {
    await withQueryBatch(args, (qb) => qb.resume(args.name));
    print(args, { datasource: args.name, paused: false }, `resumed ${args.name}: the next run drains it`);
  },
};

function cancelBuilder(y: Argv<GlobalArgs>) {
  return y
    .positional('id', { type: 'string', demandOption: true, describe: 'The id `spool` printed' })
    .example('$0 cancel 01M81875YNJMPGVYQNQ96CYM8R', 'remove a queued job (exit 1 when it is running or has run)');
}

type CancelArgs = ArgsOf<typeof cancelBuilder>;

const cancelCommand: CommandModule<GlobalArgs, CancelArgs> = {
  command: 'cancel <id>',
  describe: 'Remove a queued job from the spool (exit 1 when it is running or already finished)',
  builder: cancelBuilder,
  handler: async (args: ArgumentsCamelCase<CancelArgs>) => {
    const result = await withQueryBatch(args, (qb) => qb.cancel(args.id));
    print(args, result, `cancelled ${result.id} on ${result.datasource} (was in ${oneLine(result.file)})`);
  },
};

/** The queue-control commands, in the order help lists them. */
export const queueControlCommands = [pauseCommand, resumeCommand, cancelCommand] as CommandModule<GlobalArgs, unknown>[];
