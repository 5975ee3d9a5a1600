// Builds the bin, dist/cli.js, as a rolldown bundle (`npm run build` runs tsc for the library,
// dist/index.js with its .d.ts, then this). dist/cli.js holds src/cli.ts only; the rest is in
// chunks under dist/bin/:
//  - startup-<hash>.js: every module that the CLI's modules (cli/main.ts, cli/yargs.ts) import
//    statically, i.e. what any command loads at start, in one file instead of about 90;
//  - one chunk per lazy `await import()` (a command's implementation, a dialect, the log
//    reader, the dashboard's server, …) and the ones they share, loaded only when needed.
// Packages stay outside the bundle, loaded from node_modules (a command that needs mysql2 or
// winston imports them lazily, as before), except yargs' parser: yargs' factory (not among
// yargs' exports) and its own dependencies, resolved from yargs' folder, are in startup (see
// src/cli/yargs.ts); yargs' message files are copied to dist/bin/yargs-locales/.
// dist/bin/modules.json lists the source modules in each file (test/cli-start.test.ts reads it).
// Why a bundle, and why rolldown: docs/decisions.md ("The bin is a bundle").
import { rolldown } from 'rolldown';
import { cpSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const entry = join(root, 'src', 'cli.ts');
const out = join(root, 'dist');
const yargsEntry = createRequire(join(root, 'package.json')).resolve('yargs');
const yargsRoot = dirname(yargsEntry);
/** What src/cli/yargs.ts imports from yargs' folder. */
const FROM_YARGS = /^(yargs-parser|y18n|escalade\/sync|get-caller-file)$/;
const BARE = /^[^./\0]/;
/** src/db/*.ts: the modules the dialects share (src/db/<dialect>/ are the dialects' own). */
const DB_SHARED = /[\\/]src[\\/]db[\\/][^\\/]+\.ts$/;

/** The modules loaded at start: those the entry imports (lazily), and everything they import statically. */
const startup = new Set();

const bundle = await rolldown({
  input: { cli: entry },
  platform: 'node',
  logLevel: 'warn',
  // No tree-shaking, and no dead-code elimination at output (minify: false below): both drop a
  // call whose result is unused when they deem the callee pure, and some calls are made for
  // the error they may throw (decodeURIComponent in db/url.ts's check of a URL's %-escapes:
  // test/cli.test.ts saw it go). The bundle keeps every statement of what it bundles.
  treeshake: false,
  plugins: [{
    name: 'querybatch-bin',
    async resolveId(source, importer, options) {
      if (!BARE.test(source) || source.startsWith('node:')) return null;
      if (source.startsWith('yargs/build/')) return join(yargsRoot, source.slice('yargs/'.length));
      if (FROM_YARGS.test(source) && importer !== undefined && !importer.includes('/node_modules/')) {
        return this.resolve(source, yargsEntry, { ...options, skipSelf: true });
      }
      // Inside yargs' bundled code (its own relative imports are not bare): bundled too.
      if (importer !== undefined && importer.includes('/node_modules/')) return null;
      return { id: source, external: true };
    },
    buildEnd() {
      const queue = [...(this.getModuleInfo(entry)?.dynamicallyImportedIds ?? [])];
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
        const info = this.getModuleInfo(id);
        if (startup.has(id) || info === null || info.isExternal) continue;
        startup.add(id);
        queue.push(...info.importedIds);
      }
    },
  }],
});
const { output } = await bundle.write({
  dir: out,
  format: 'esm',
  entryFileNames: '[name].js',
  chunkFileNames: 'bin/[name]-[hash].js',
  sourcemap: true,
  minify: false,
  codeSplitting: {
    groups: [
      { name: 'startup', test: (id) => startup.has(id) },
      // The dialect-independent database modules a dialect's lazy chunk needs (statement
      // shapes, error info, the lazy driver): one file, not one each.
      { name: 'db', test: (id) => DB_SHARED.test(id) },
    ],
  },
});
await bundle.close();

cpSync(join(yargsRoot, 'locales'), join(out, 'bin', 'yargs-locales'), { recursive: true });
const modules = Object.fromEntries(output.filter((file) => file.type === 'chunk').map((chunk) => [
  chunk.fileName,
  chunk.moduleIds.filter((id) => !id.startsWith('\0')).map((id) => relative(root, id)),
]));
writeFileSync(join(out, 'bin', 'modules.json'), `${JSON.stringify(modules, null, 1)}\n`);
