/** `querybatch spool [sql]`: writes one statement (or, with --file, a script) to the spool and prints its id. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { QueryBatchError } from '../../errors.js';
import type { SpoolOptions } from '../../interfaces.js';
import { decodeParams, type Params, type Priority, type WireParams } from '../../spool/record.js';
import { print, readStdin, wholeNumberFlag, withQueryBatch, type ArgsOf, type GlobalArgs } from '../common.js';

/** `argv`: the raw arguments, where a lone "-" (SQL from standard input) can still be seen. */
export function spoolCommand(argv: readonly string[]): CommandModule<GlobalArgs, SpoolArgs> {
  return {
    command: 'spool [sql]',
    describe: 'Write a statement (or a script, --file) to the spool; prints its id',
    builder,
    handler: (args) => spool(args, argv),
  };
}

function builder(y: Argv<GlobalArgs>) {
  return y
    .positional('sql', { type: 'string', describe: 'The SQL; "-" or none reads it from standard input' })
    .option('datasource', { alias: 'd', type: 'string', describe: 'Datasource name (default: the configured default)' })
    .option('param', { alias: 'p', type: 'string', array: true, describe: 'A positional parameter value, as a string (repeatable, in order)' })
    .option('params', { type: 'string', describe: 'All parameters as JSON: an array for ?, an object for :name; {"$date":…}, {"$bytes":base64}, {"$bigint":"…"} tags allowed' })
    .option('webhook', { type: 'string', describe: 'An http(s) URL told (signed JSON POST) when this statement succeeds or fails' })
    .option('timeout-ms', { type: 'string', describe: 'Stop the statement on the server after this many ms (default: the configured timeoutMs, 5 minutes)' })
    .option('capture-result', { type: 'boolean', describe: 'Keep the result rows (a background SELECT) as pages, for querybatch result ID' })
    .option('priority', { type: 'string', choices: ['normal', 'immediate'], describe: 'immediate: run before every normal statement of its datasource, and at once under a running start' })
    .option('key', { type: 'string', describe: 'An idempotency key: while a job spooled with it is delayed, queued, running or in failed/ (or succeeded within keyRetentionMs), nothing is spooled and that job\'s id is printed' })
    .option('run-at', { type: 'string', describe: 'Do not run before this ISO 8601 time with a time zone (2026-12-01T08:00:00Z)' })
    .option('delay', { type: 'string', describe: 'Do not run before this many milliseconds from now' })
    .option('file', { alias: 'f', type: 'string', describe: 'A script of several statements (a dump, a migration) to run as one job, in order, resumable; "-" reads it from standard input' })
    .conflicts('param', 'params')
    .conflicts('file', ['param', 'params', 'capture-result'])
    .conflicts('run-at', 'delay')
    .check((a) => wholeNumberFlag(a.timeoutMs, '--timeout-ms', 1) !== null)
    .check((a) => wholeNumberFlag(a.delay, '--delay', 0, ' of milliseconds') !== null && runAtFlag(a.runAt) !== null)
    .check((a) => a.file === undefined || a.sql === undefined || a.sql === '' || `Expected SQL or --file, not both; got both (SQL ${JSON.stringify(a.sql.slice(0, 40))}, --file ${JSON.stringify(a.file)})`)
    .example('$0 spool --file dump.sql', 'a script: its statements run in order, each once')
    .example('$0 spool --key order-42 --delay 60000 "UPDATE orders SET reminded = 1 WHERE id = 42"', 'once per key, not before a minute from now')
    .example('$0 spool "INSERT INTO audit (user, action) VALUES (?, ?)" -p alice -p login', '')
    .example(`$0 spool --params '[1, {"$date": "2026-01-01T00:00:00.000Z"}]' "INSERT INTO t (a, d) VALUES (?, ?)"`, '');
}

type SpoolArgs = ArgsOf<typeof builder>;

async function spool(args: ArgumentsCamelCase<SpoolArgs>, argv: readonly string[]): Promise<void> {
  const options = optionsFrom(args);
  if (args.file !== undefined) {
    const file = args.file;
    // yargs reads `--file -` as an empty string.
    const fromStdin = file === '' || file === '-';
    if (fromStdin && process.stdin.isTTY) throw new QueryBatchError('EMPTY_SQL', 'Expected a script on standard input (--file -); got a terminal');
    const id = await withQueryBatch(args, (qb) => (fromStdin ? qb.spoolScript(process.stdin, options) : qb.spoolScriptFile(file, options)));
    print(args, { id }, id);
    return;
  }
  let sql = args.sql;
  // yargs parses a lone "-" as an empty string: look at the raw arguments instead.
  if (sql === undefined || argv.includes('-')) {
    if (process.stdin.isTTY) throw new QueryBatchError('EMPTY_SQL', 'Expected SQL as an argument or on standard input; got neither');
    sql = await readStdin();
  }
  const params = paramsFrom(args.param, args.params);
  const id = await withQueryBatch(args, (qb) => qb.spool(sql, params, options));
  print(args, { id }, id);
}

/** The job's options from the flags. */
function optionsFrom(args: ArgumentsCamelCase<SpoolArgs>): SpoolOptions {
  return {
    ...(args.datasource !== undefined && { datasource: args.datasource }),
    ...(args.webhook !== undefined && { webhook: args.webhook }),
    ...(args.timeoutMs !== undefined && { timeoutMs: wholeNumberFlag(args.timeoutMs, '--timeout-ms', 1) }),
    ...(args.priority !== undefined && { priority: args.priority as Priority }),
    ...(args.captureResult === true && { captureResult: true }),
    ...(args.key !== undefined && { key: args.key }),
    ...(args.runAt !== undefined && { runAt: runAtFlag(args.runAt) }),
    ...(args.delay !== undefined && { delayMs: wholeNumberFlag(args.delay, '--delay', 0, ' of milliseconds') }),
  };
}

/** An ISO 8601 time with a time zone, as people type it: a space may stand for the T, seconds may be left out (spool files themselves always write the full form: record.ts ISO_TIME_PATTERN). */
const ISO_TIME = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)$/;

/** --run-at as a Date. Throws CONFIG_INVALID. */
function runAtFlag(raw: unknown): Date | undefined {
  if (raw === undefined) return undefined;
  const text = String(Array.isArray(raw) ? raw[raw.length - 1] : raw);
  const date = new Date(text);
  if (!ISO_TIME.test(text) || Number.isNaN(date.getTime())) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected --run-at to be an ISO 8601 time with a time zone, like 2026-12-01T08:00:00Z or 2026-12-01T09:00:00+01:00; got ${JSON.stringify(text)}`);
  }
  return date;
}

/** The parameters from -p (strings, in order) or --params (JSON with type tags). */
function paramsFrom(param: string[] | undefined, paramsJson: string | undefined): Params {
  if (paramsJson === undefined) return param ?? [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(paramsJson);
  } catch (error) {
    throw new QueryBatchError('UNSERIALIZABLE_PARAM', `Expected --params to be a JSON array or object; ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object') {
    throw new QueryBatchError('UNSERIALIZABLE_PARAM', `Expected --params to be a JSON array or object; got ${JSON.stringify(parsed)}`);
  }
  try {
    return decodeParams(parsed as WireParams);
  } catch (error) {
    throw new QueryBatchError('UNSERIALIZABLE_PARAM', `${(error as Error).message.replace(/^Expected params/, 'Expected --params')} (--params given: ${JSON.stringify(paramsJson.length > 200 ? `${paramsJson.slice(0, 200)}…` : paramsJson)})`);
  }
}
