#!/usr/bin/env node
/** The querybatch bin (package.json points at dist/cli.js): runs the command line on this process's arguments. */
import { main } from './cli/main.js';
import { hideBin } from './cli/yargs.js';

await main(hideBin(process.argv));
