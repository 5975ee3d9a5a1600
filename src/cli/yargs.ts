/**
 * yargs without its help renderer at start. yargs' own ESM entry loads cliui, string-width and
 * wrap-ansi (about half of what yargs costs to load), and after every command's handler
 * renders the whole help text to cache it (for a failure message that shows help: ours does
 * not, main.ts prints one line). Here yargs is made by its own factory with a copy of its ESM
 * platform shim (yargs 18: lib/platform-shims/esm.mjs) in which cliui and string-width are
 * loaded the first time help is rendered (--help), and the cached help is not rendered.
 * Should yargs' files move (another major version), this falls back to yargs' own entry:
 * slower, the same behaviour.
 */
import { notStrictEqual, strictEqual } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type Yargs from 'yargs';

export type YargsFactory = typeof Yargs;

/** The arguments after `node script` (what yargs/helpers' hideBin gives, without loading yargs). */
export function hideBin(argv: readonly string[]): string[] {
  return argv.slice(2);
}

/** yargs' factory, made once. */
let made: Promise<YargsFactory> | undefined;

export function loadYargs(): Promise<YargsFactory> {
  made ??= lightYargs().catch(async () => (await import('yargs')).default);
  return made;
}

interface Internals {
  getInternalMethods(): { getUsageInstance(): { cacheHelpMessage(): void } };
}

async function lightYargs(): Promise<YargsFactory> {
  const entry = fileURLToPath(import.meta.resolve('yargs'));
  const root = dirname(entry);
  // yargs' own dependencies, resolved from yargs (they are not querybatch's).
  const fromYargs = createRequire(entry);
  const load = async <T>(specifier: string): Promise<T> => (await import(pathToFileURL(fromYargs.resolve(specifier)).href)) as T;
  const [factory, parser, escalade, getCallerFile, y18n] = await Promise.all([
    import(pathToFileURL(join(root, 'build/lib/yargs-factory.js')).href) as Promise<{ YargsFactory(shim: unknown): YargsFactory }>,
    load<{ default: unknown }>('yargs-parser'),
    load<{ default: unknown }>('escalade/sync'),
    load<{ default: (position?: number) => string }>('get-caller-file'),
    load<{ default: (options: { directory: string; updateFiles: boolean }) => unknown }>('y18n'),
  ]);
  // cliui and string-width, only when help is rendered: synchronously (require() of an ES
  // module, Node >= 20.19), else loaded now.
  const sync = (process.features as { require_module?: boolean }).require_module === true;
  const preloaded = sync ? null : await Promise.all([load<{ default: unknown }>('cliui'), load<{ default: (text: string) => number }>('string-width')]);
  const cliui = (): (options: unknown) => unknown => (preloaded?.[0].default ?? fromYargs('cliui')) as (options: unknown) => unknown;
  const stringWidth = (): (text: string) => number => preloaded?.[1].default ?? (fromYargs('string-width') as { default: (text: string) => number }).default;
  const mainFilename = entry.substring(0, entry.lastIndexOf('node_modules'));
  const shim = {
    assert: { notStrictEqual, strictEqual },
    cliui: (options: unknown) => cliui()(options),
    findUp: escalade.default,
    getEnv: (key: string) => process.env[key],
    inspect,
    getProcessArgvBin: () => process.argv[1],
    mainFilename: mainFilename || process.cwd(),
    Parser: parser.default,
    path: { basename, dirname, extname, relative, resolve, join },
    process: {
      argv: () => process.argv,
      cwd: () => process.cwd(),
      emitWarning: (warning: string, type?: string) => process.emitWarning(warning, type),
      execPath: () => process.execPath,
      exit: (code: number) => process.exit(code),
      nextTick: (callback: () => void) => process.nextTick(callback),
      stdColumns: typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null,
    },
    readFileSync,
    readdirSync,
    require: fromYargs,
    getCallerFile: () => {
      const callerFile = getCallerFile.default(3);
      return /^file:\/\//.test(callerFile) ? fileURLToPath(callerFile) : callerFile;
    },
    stringWidth: (text: string) => stringWidth()(text),
    y18n: y18n.default({ directory: join(root, 'locales'), updateFiles: false }),
  };
  const yargs = factory.YargsFactory(shim);
  return (...args: Parameters<YargsFactory>) => {
    const instance = yargs(...args);
    // The help cached after a command's handler is only shown by yargs' own failure output.
    (instance as unknown as Internals).getInternalMethods().getUsageInstance().cacheHelpMessage = () => {};
    return instance;
  };
}
