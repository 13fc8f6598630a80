#!/usr/bin/env node
// The `task-tracker` command line. It runs from source through tsx, like `npm start`: no build step. The Node.js
// version is checked before the client is loaded, so an older Node gets one line saying so (src/node-version.ts).
import process from 'node:process';
import path from 'node:path';
import { register } from 'tsx/esm/api';

// The repository's tsconfig.json, whatever the working directory: its paths lead @task-tracker/client to the source.
register({ tsconfig: path.join(import.meta.dirname, '..', 'tsconfig.json') });
const { exitUnlessSupportedNode } = await import('../src/node-version.ts');
exitUnlessSupportedNode();
const { main } = await import('../client/cli.ts');
process.exitCode = await main(process.argv.slice(2));
