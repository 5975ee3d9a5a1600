#!/usr/bin/env node
/** The querybatch bin (package.json points at dist/cli.js): runs the command line on this process's arguments. */
import module from 'node:module';

// Node >= 22.1 keeps the compiled code of the modules it loads on disk (in node's default
// place under the OS temp dir, or $NODE_COMPILE_CACHE), so a later start compiles less;
// before the CLI's modules are imported, hence the dynamic import below. Node 20 has no such
// cache: this does nothing there.
const { enableCompileCache } = module as { enableCompileCache?: () => unknown };
if (typeof enableCompileCache === 'function') {
  try {
    enableCompileCache();
  } catch {
    // A cache that cannot be used (a read-only temp dir) only costs speed.
  }
}

const [{ main }, { hideBin }] = await Promise.all([import('./cli/main.js'), import('./cli/yargs.js')]);
await main(hideBin(process.argv));
