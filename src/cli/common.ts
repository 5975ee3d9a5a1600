/**
 * What every command shares: the global options, exit codes, building a QueryBatch from
 * config file, environment and flags, printing text or JSON, standard input, signals.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { CONFIG_FILE_NAME, environmentOptions, mergeOptions, readConfigFile } from '../config.js';
import type { QueryBatchOptions } from '../interfaces.js';
import { QueryBatchError } from '../errors.js';
import { QueryBatch } from '../querybatch.js';

/** Exit codes: 0 ok, 1 the run had failures (or a runtime error), 2 usage or configuration error. */
export const EXIT_OK = 0;
export const EXIT_FAILURES = 1;
export const EXIT_USAGE = 2;

/** The options every command takes. */
export interface GlobalArgs {
  home?: string;
  config?: string;
  json: boolean;
}

/** The arguments a command's builder declares (read from its return type): what its handler gets. */
export type ArgsOf<B extends (y: Argv<GlobalArgs>) => unknown> = ReturnType<B> extends Argv<infer U> ? U : never;

/** The package's version (dist/cli/common.js is two levels below package.json). */
export const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Config file, then environment, then flags. */
export function optionsFrom(args: GlobalArgs, env: NodeJS.ProcessEnv): QueryBatchOptions {
  const home = resolve(args.home ?? env.QUERYBATCH_HOME ?? process.cwd());
  const file = args.config !== undefined
    ? readConfigFile(resolve(args.config), true)
    : readConfigFile(join(home, CONFIG_FILE_NAME));
  const fromEnv = environmentOptions(env, Object.keys(file.datasources ?? {}));
  return { ...mergeOptions(file, fromEnv), home, configFile: false };
}

/** Runs `use` with a QueryBatch made from `args`, and closes it after. */
export async function withQueryBatch<T>(args: GlobalArgs, use: (qb: QueryBatch) => Promise<T>): Promise<T> {
  const qb = new QueryBatch(optionsFrom(args, process.env));
  try {
    return await use(qb);
  } finally {
    await qb.close();
  }
}

/** Prints `json` (as one line) with --json, else `text`; a newline after either. */
export function print(args: GlobalArgs, json: unknown, text: string): void {
  process.stdout.write(args.json ? JSON.stringify(json) + '\n' : text + '\n');
}

/** All of standard input, as UTF-8 text. */
export function readStdin(): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => (data += chunk));
    process.stdin.on('end', () => resolvePromise(data));
    process.stdin.on('error', reject);
  });
}

/** A time option (--since, --until): ISO time or an age like 2h; undefined when not given. The log reader loads only for a command that takes one. */
export async function timeOption(value: string | undefined, what: string): Promise<Date | undefined> {
  return value === undefined ? undefined : (await import('../ops/log-reader.js')).parseTime(value, what);
}

/** Runs `work` with a signal that SIGINT or SIGTERM aborts (the work decides what stopping means). */
export async function untilSignal<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/**
 * A flag that takes a whole number, read from the text given (declare it `type: 'string'`:
 * as a number, yargs would turn `abc` into NaN and the message could not say what was
 * given); undefined when the flag was not given. Throws CONFIG_INVALID naming the flag,
 * what it expects and the text.
 */
export function wholeNumberFlag(raw: unknown, flag: string, min: 0 | 1, unit = ''): number | undefined {
  if (raw === undefined) return undefined;
  const text = String(Array.isArray(raw) ? raw[raw.length - 1] : raw);
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected ${flag} to be a whole number${unit} ${min === 0 ? '>= 0' : '> 0'}; got ${JSON.stringify(text)}`);
  }
  return n;
}
