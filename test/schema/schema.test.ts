import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  lexicographicSortSchema,
  printSchema,
  type IntrospectionQuery,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const { server } = useServer('schema');

describe('schema.graphql is the source of truth', () => {
  it('is exactly the schema the running server serves', async () => {
    const res = await server.gql<IntrospectionQuery>(getIntrospectionQuery({ descriptions: true }));
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
    const served = printSchema(lexicographicSortSchema(buildClientSchema(res.body.data!)));
    const file = printSchema(lexicographicSortSchema(buildSchema(await readFile(path.join(ROOT, 'schema.graphql'), 'utf8'))));
    expect(served).toBe(file);
  });

  it('describes every type and field', async () => {
    const schema = buildSchema(await readFile(path.join(ROOT, 'schema.graphql'), 'utf8'));
    const missing: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || ['String', 'Int', 'Float', 'Boolean', 'ID'].includes(type.name)) continue;
      if (!type.description) missing.push(type.name);
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        const fields = Object.values(type.getFields() as Record<string, { name: string; description?: string | null }>);
        for (const field of fields) if (!field.description) missing.push(`${type.name}.${field.name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('has generated code that is up to date (npm run codegen)', async () => {
    const { stdout } = await run('npx', ['graphql-codegen', '--config', 'codegen.ts', '--check'], { cwd: ROOT, timeout: 60_000 });
    expect(stdout).not.toMatch(/outdated|changed/i);
  }, 90_000);

  it('lists breaking changes against a released schema and fails on them', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tt-schema-'));
    try {
      const released = path.join(dir, 'released.graphql');
      // The released schema had a field the current one lacks: removing it breaks clients.
      const current = await readFile(path.join(ROOT, 'schema.graphql'), 'utf8');
      await writeFile(released, current.replace('type Task implements Node {', 'type Task implements Node {\n  """Gone."""\n  legacyField: String'));
      const failed = await run('npx', ['tsx', 'scripts/schema-breaking.ts', '--against', released], { cwd: ROOT }).catch((err: { code: number; stdout: string }) => err);
      expect((failed as { code: number }).code).toBe(1);
      expect((failed as { stdout: string }).stdout).toMatch(/BREAKING\s+FIELD_REMOVED: Task\.legacyField was removed/);
      const same = await run('npx', ['tsx', 'scripts/schema-breaking.ts', '--against', path.join(ROOT, 'schema.graphql')], { cwd: ROOT });
      expect(same.stdout).toMatch(/no breaking changes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
