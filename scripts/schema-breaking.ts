/**
 * Lists the breaking (and dangerous) changes between a released schema and schema.graphql, with graphql-js
 * `findBreakingChanges`. Exit code 1 when something breaks clients.
 *
 *   npm run schema:breaking                      # against the newest git tag v*, else the committed schema.graphql
 *   npm run schema:breaking -- --against FILE    # against a schema file
 *   npm run schema:breaking -- --ref v1.2.0      # against schema.graphql at a git ref
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildSchema, findBreakingChanges, findDangerousChanges } from 'graphql';

const { values } = parseArgs({ options: { against: { type: 'string' }, ref: { type: 'string' }, current: { type: 'string', default: 'schema.graphql' } } });

function git(args: string[]): string {
  return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

function released(): { label: string; sdl: string } {
  if (values.against) return { label: values.against, sdl: readFileSync(values.against, 'utf8') };
  let ref = values.ref;
  if (!ref) {
    try {
      ref = git(['describe', '--tags', '--abbrev=0', '--match', 'v*']).trim();
    } catch {
      ref = 'HEAD';
    }
  }
  return { label: `schema.graphql at ${ref}`, sdl: git(['show', `${ref}:schema.graphql`]) };
}

const base = released();
const before = buildSchema(base.sdl);
const after = buildSchema(readFileSync(values.current, 'utf8'));
const breaking = findBreakingChanges(before, after);
const dangerous = findDangerousChanges(before, after);
process.stdout.write(`Comparing ${values.current} with ${base.label}\n`);
for (const c of breaking) process.stdout.write(`BREAKING  ${c.type}: ${c.description}\n`);
for (const c of dangerous) process.stdout.write(`dangerous ${c.type}: ${c.description}\n`);
process.stdout.write(breaking.length ? `${breaking.length} breaking change(s)\n` : 'no breaking changes\n');
process.exitCode = breaking.length ? 1 : 0;
