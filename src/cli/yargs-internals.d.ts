// Types of the yargs internals that cli/yargs.ts imports and the build bundles (scripts/build-cli.mjs
// resolves them from yargs' folder): yargs' factory, which its package does not export, and its
// own dependencies, which ship no types of their own.
declare module 'yargs/build/lib/yargs-factory.js' {
  import type Yargs from 'yargs';
  /** Makes yargs' factory on a platform shim (yargs 18: lib/platform-shims/esm.mjs is Node's). */
  export function YargsFactory(shim: object): typeof Yargs;
}

declare module 'yargs-parser' {
  const Parser: unknown;
  export default Parser;
}

declare module 'y18n' {
  /** yargs' message translator, reading `<directory>/<locale>.json`. */
  export default function y18n(options: { directory: string; updateFiles: boolean }): unknown;
}
