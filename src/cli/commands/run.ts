/** `querybatch run`: runs everything waiting now, with a progress bar on a terminal. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { EXIT_FAILURES, EXIT_OK, print, untilSignal, wholeNumberFlag, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';
import { formatSummary } from '../format.js';
import type { RunProgress } from '../../interfaces.js';
import type { formatProgress as FormatProgress } from '../progress.js';

export const runCommand: CommandModule<GlobalArgs, RunArgs> = {
  command: 'run',
  describe: 'Run everything waiting now; prints the summary (exit 1 when anything failed)',
  builder,
  handler,
};

function builder(y: Argv<GlobalArgs>) {
  return y
    .option('datasource', { alias: 'd', type: 'string', describe: 'Only this datasource' })
    .option('limit', { type: 'string', describe: 'At most N statements per datasource' })
    .check((a) => wholeNumberFlag(a.limit, '--limit', 1) !== null);
}

type RunArgs = ArgsOf<typeof builder>;

async function handler(args: ArgumentsCamelCase<RunArgs>): Promise<void> {
  // The bar's renderer loads only when there is a bar to draw.
  const bar = process.stderr.isTTY && !args.json ? progressBar(process.stderr, (await import('../progress.js')).formatProgress) : null;
  const limit = wholeNumberFlag(args.limit, '--limit', 1);
  const summary = await untilSignal((signal) => withQueryBatch(args, (qb) => qb.run({
    ...(args.datasource !== undefined && { datasource: args.datasource }),
    ...(limit !== undefined && { limit }),
    signal,
    ...(bar && { onProgress: bar.onProgress }),
  }).finally(() => bar?.finish())));
  print(args, summary, formatSummary(summary));
  process.exitCode = summary.sqlFailed + summary.connectionFailed + summary.uncertain > 0 ? EXIT_FAILURES : EXIT_OK;
}

/** Draws the progress bar on stderr (a TTY) for runs that last more than a moment. */
function progressBar(stream: NodeJS.WriteStream, formatProgress: typeof FormatProgress): { onProgress: (p: RunProgress) => void; finish(): void } {
  const started = performance.now();
  let shown = false;
  let last = 0;
  return {
    onProgress: (p) => {
      const now = performance.now();
      if (now - started < PROGRESS_AFTER_MS || (now - last < PROGRESS_EVERY_MS && p.done < p.total)) return;
      last = now;
      shown = true;
      stream.write(`\r${formatProgress({ ...p, elapsedMs: now - started }, (stream.columns || 80) - 1)}\u001b[K`);
    },
    finish: () => {
      if (shown) stream.write('\r\u001b[K');
    },
  };
}

/** The bar appears once a run has gone on this long, and is redrawn at most this often. */
const PROGRESS_AFTER_MS = 500;
const PROGRESS_EVERY_MS = 100;
