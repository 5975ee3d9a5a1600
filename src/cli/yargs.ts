/**
 * yargs, bundled into the CLI and without its help renderer at start. The bin (dist/cli.js) is
 * a rolldown bundle (scripts/build-cli.mjs): yargs' factory and the parser's own dependencies
 * (yargs-parser, y18n, escalade, get-caller-file) are in its startup chunk, so a start resolves
 * and reads none of their files. yargs' own ESM entry would also load cliui, string-width and
 * wrap-ansi (about half of what yargs costs to load), and after every command's handler render
 * the whole help text to cache it (for a failure message that shows help: ours does not,
 * main.ts prints one line). So yargs is made here by its own factory with a copy of its ESM
 * platform shim (yargs 18: lib/platform-shims/esm.mjs) in which cliui and string-width are
 * required from yargs' folder the first time help is rendered (--help), and the cached help is
 * not rendered.
 */
import { notStrictEqual, strictEqual } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import type Yargs from 'yargs';
// yargs' factory (not among yargs' exports) and yargs' own dependencies: the build resolves
// them from yargs' folder (scripts/build-cli.mjs); the types it lacks are in
// yargs-internals.d.ts.
import { YargsFactory } from 'yargs/build/lib/yargs-factory.js';
import Parser from 'yargs-parser';
import escalade from 'escalade/sync';
import getCallerFile from 'get-caller-file';
import y18n from 'y18n';

export type YargsFactory = typeof Yargs;

/** The arguments after `node script` (what yargs/helpers' hideBin gives, without loading yargs). */
export function hideBin(argv: readonly string[]): string[] {
  return argv.slice(2);
}

interface Internals {
  getInternalMethods(): { getUsageInstance(): { cacheHelpMessage(): void } };
}

/** querybatch's package folder: this code runs from dist/bin/ (the bundle's chunks). */
const packageRoot = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);
/** A require() from yargs' folder, made the first time help is rendered. */
let fromYargs: NodeJS.Require | undefined;
const yargsRequire = (): NodeJS.Require => (fromYargs ??= createRequire(require.resolve('yargs')));
// cliui and string-width, only when help is rendered: synchronously (require() of an ES
// module, Node >= 20.19).
const cliui = (options: unknown): unknown => (yargsRequire()('cliui') as (options: unknown) => unknown)(options);
const stringWidth = (text: string): number => (yargsRequire()('string-width') as { default: (text: string) => number }).default(text);

const shim = {
  assert: { notStrictEqual, strictEqual },
  cliui,
  findUp: escalade,
  getEnv: (key: string) => process.env[key],
  inspect,
  getProcessArgvBin: () => process.argv[1],
  // Where yargs looks for a package.json when it is not told the version (we tell it).
  mainFilename: packageRoot,
  Parser,
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
  require,
  getCallerFile: () => {
    const callerFile = getCallerFile(3) as string;
    return /^file:\/\//.test(callerFile) ? fileURLToPath(callerFile) : callerFile;
  },
  stringWidth,
  // yargs' messages in each language, copied beside the bundle's chunks by the build.
  y18n: y18n({ directory: fileURLToPath(new URL('yargs-locales', import.meta.url)), updateFiles: false }),
};

const factory = YargsFactory(shim);

/** yargs' factory (what `import yargs from 'yargs'` gives), without the help cached after a command. */
export const yargs: YargsFactory = (...args: Parameters<YargsFactory>) => {
  const instance = factory(...args);
  // The help cached after a command's handler is only shown by yargs' own failure output.
  (instance as unknown as Internals).getInternalMethods().getUsageInstance().cacheHelpMessage = () => {};
  return instance;
};
