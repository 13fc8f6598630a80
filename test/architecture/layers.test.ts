/**
 * Which layer may import which: every .ts file under src/ is read, the specifiers of its imports (static, type-only,
 * re-exports and literal `import('...')`) are taken with a regular expression, and each rule of {@link RULES} says
 * what the files it covers must not import. A new rule is one line of the table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/child.js';

interface Rule {
  /** The files the rule covers: a path under the repository root, `*` within one folder, `**` across folders. */
  files: string;
  /** What they must not import: project paths (same globs) or packages (`graphql`, `@apollo/*`: a name, subpaths too). */
  forbid: readonly string[];
  /** Why, for the failure message. */
  why: string;
}

/** The packages of the GraphQL layer. */
const GRAPHQL_PACKAGES = ['graphql', '@apollo/*'];

const RULES: readonly Rule[] = [
  {
    files: 'src/db/**',
    forbid: ['src/graphql/**', 'src/tasks/**', 'src/dependencies/**', 'src/events/**', 'src/webhooks/**', 'src/http/**', 'src/subscriptions/**', ...GRAPHQL_PACKAGES],
    why: 'the data layer knows neither the API nor the domain',
  },
  { files: 'src/tasks/**', forbid: ['src/graphql/**', 'src/http/**', 'src/subscriptions/**', ...GRAPHQL_PACKAGES], why: 'entities, services and rules know nothing of GraphQL' },
  { files: 'src/dependencies/**', forbid: ['src/graphql/**', 'src/http/**', 'src/subscriptions/**', ...GRAPHQL_PACKAGES], why: 'entities, services and rules know nothing of GraphQL' },
  { files: 'src/events/**', forbid: ['src/graphql/**', 'src/http/**', 'src/subscriptions/**', ...GRAPHQL_PACKAGES], why: 'entities, services and rules know nothing of GraphQL' },
  { files: 'src/webhooks/**', forbid: ['src/graphql/**', 'src/http/**', 'src/subscriptions/**', ...GRAPHQL_PACKAGES], why: 'webhooks are managed and delivered without GraphQL' },
  { files: 'src/pagination.ts', forbid: ['src/graphql/**', ...GRAPHQL_PACKAGES], why: 'pages and cursors are the domain\'s' },
  { files: 'src/errors.ts', forbid: GRAPHQL_PACKAGES, why: 'domain errors become GraphQL errors at the edge (src/graphql/errors.ts)' },
];

/** The import specifiers of a TypeScript source: `import ... from`, `import '...'`, `export ... from`, `import('...')`. */
function importsOf(source: string): string[] {
  // Comments may quote code; a comment opening a line is dropped (specifiers in strings are never preceded by one).
  const code = source.replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/^\s*\/\/.*$/gm, '');
  const specifiers: string[] = [];
  for (const match of code.matchAll(/(?:^|[\s;}])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"\n]+)['"]/g)) specifiers.push(match[1]!);
  for (const match of code.matchAll(/\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g)) specifiers.push(match[1]!);
  return specifiers;
}

function globRegExp(glob: string): RegExp {
  const body = glob
    .split(/(\*\*|\*)/)
    .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/** What a specifier in `file` names: a project path (relative specifiers, `.js` read as the `.ts` source) or a package name. */
function targetOf(file: string, specifier: string): { local: string } | { pkg: string } {
  if (specifier.startsWith('.')) return { local: path.posix.join(path.posix.dirname(file), specifier).replace(/\.js$/, '.ts') };
  const parts = specifier.split('/');
  return { pkg: specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier) };
}

function forbids(pattern: string, target: { local: string } | { pkg: string }): boolean {
  const isPath = pattern.startsWith('src/');
  if ('local' in target) return isPath && globRegExp(pattern).test(target.local);
  return !isPath && globRegExp(pattern).test(target.pkg);
}

/** Every .ts file under src/, relative to the root with forward slashes. */
function sourceFiles(): string[] {
  return readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `src/${f.split(path.sep).join('/')}`)
    .sort();
}

describe('layers', () => {
  it('reads every kind of import', () => {
    const source = [
      "import { a,\n  b } from '../graphql/errors.js';",
      "import type { C } from '@apollo/server';",
      "import 'node:fs';",
      "export * from './x.js';",
      'const m = await import("graphql");',
      "// import { no } from 'commented-out';",
      "/**\n * import { no } from 'in-a-doc-comment';\n */",
      "const s = 'import is a word';",
    ].join('\n');
    expect(importsOf(source).sort()).toEqual(['../graphql/errors.js', './x.js', '@apollo/server', 'graphql', 'node:fs'].sort());
  });

  const files = sourceFiles();

  it.each(RULES.map((rule) => [rule.files, rule] as const))('%s', (_name, rule) => {
    const covered = files.filter((f) => globRegExp(rule.files).test(f));
    expect(covered.length, `no file matches ${rule.files}`).toBeGreaterThan(0);
    const violations = covered.flatMap((file) =>
      importsOf(readFileSync(path.join(ROOT, file), 'utf8'))
        .filter((specifier) => rule.forbid.some((pattern) => forbids(pattern, targetOf(file, specifier))))
        .map((specifier) => `${file} imports '${specifier}'`),
    );
    expect(violations, `${rule.files} must not import ${rule.forbid.join(', ')}: ${rule.why}`).toEqual([]);
  });
});
