/**
 * The Node.js the code runs on: the version files agree, the tests run on it, and an entry started on an older
 * Node says so in one line (src/node-version.ts) instead of failing inside a dependency.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REQUIRED_NODE_MAJOR, nodeVersionProblem } from '../../src/node-version.js';
import { ROOT } from '../helpers/child.js';
import { olderNode } from '../helpers/older-node.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  dependencies: Record<string, string>;
};

describe('Node.js version', () => {
  it('package.json, .node-version, .nvmrc and the node package name the same major; the tests run on it or newer', () => {
    expect(pkg.engines.node).toBe(`>=${REQUIRED_NODE_MAJOR}`);
    expect(readFileSync(path.join(ROOT, '.node-version'), 'utf8').trim()).toBe(String(REQUIRED_NODE_MAJOR));
    expect(readFileSync(path.join(ROOT, '.nvmrc'), 'utf8').trim()).toBe(String(REQUIRED_NODE_MAJOR));
    // npm install brings this Node (node_modules/.bin/node); npm scripts run on it.
    expect(pkg.dependencies.node).toMatch(new RegExp(`^${REQUIRED_NODE_MAJOR}\\.\\d+\\.\\d+$`));
    expect(Number.parseInt(process.versions.node, 10)).toBeGreaterThanOrEqual(REQUIRED_NODE_MAJOR);
  });

  it('judges versions by their major', () => {
    expect(nodeVersionProblem('20.20.2')).toMatch(/needs Node\.js 24 or newer, but this is Node\.js 20\.20\.2/);
    expect(nodeVersionProblem('23.11.1')).toContain('23.11.1');
    expect(nodeVersionProblem('24.0.0')).toBeUndefined();
    expect(nodeVersionProblem('26.12.1')).toBeUndefined();
  });

  const old = olderNode();
  it.each([
    ['the server from source (node --import tsx src/main.ts)', ['--import', 'tsx', 'src/main.ts']],
    ['the command line (bin/task-tracker.mjs)', ['bin/task-tracker.mjs', 'tasks', 'list']],
  ])(`%s on ${old.what} prints one line naming both versions and exits 1`, (_name, args) => {
    const run = spawnSync(old.command, [...old.args, ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`^task-tracker needs Node\\.js 24 or newer, but this is Node\\.js ${old.version.replace(/\./g, '\\.')} \\(.*\\): .*\\n$`));
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });
});
