#!/usr/bin/env node
/** The querybatch bin (package.json points at dist/cli.js): runs the command line on this process's arguments. */
import { hideBin } from 'yargs/helpers';
import { main } from './cli/main.js';

await main(hideBin(process.argv));
