/** `querybatch init`: creates the home layout and a commented sample config. */
import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { print, type ArgsOf, type GlobalArgs } from '../common.js';

export const initCommand: CommandModule<GlobalArgs, InitArgs> = {
  command: 'init',
  describe: 'Create the home layout (spool/, failed/, logs/) and a commented querybatch.config.json',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .option('url', { type: 'string', default: 'sqlite:querybatch.db', describe: 'URL of datasource "main" in the sample config (default: an embedded SQLite database in the home; or mysql://…, postgres://…)' });
}

type InitArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<InitArgs>): Promise<void> {
  const home = resolve(args.home ?? process.env.QUERYBATCH_HOME ?? process.cwd());
  const { initHome } = await import('../../ops/init.js');
  const result = await initHome(home, args.url);
  if (!result.configWritten) {
    print(args, { ...result, message: 'config exists; left as it is' }, `${result.config} exists already; left as it is (nothing overwritten). Layout checked: spool/, failed/, logs/.`);
    return;
  }
  print(args, result, `created ${home}/{spool,failed,logs}/ and ${result.config}\n(keys starting with "//" are comments; edit datasources.main, then: querybatch status)`);
}
