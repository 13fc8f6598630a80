#!/usr/bin/env node
// The `task-tracker` command line. It runs from source through tsx, like `npm start`: no build step.
import process from 'node:process';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../client/cli.ts');
process.exitCode = await main(process.argv.slice(2));
