/**
 * A fresh database per test file, created through the run's admin URL and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  name: string;
  url: string;
  /** A raw connection to this database, for arranging rows and asserting on them. */
  client(): Promise<pg.Client>;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('adminUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Creates an empty database named after `label`; the server migrates it at boot. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `tt_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase().slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = withDatabase(inject('adminUrl'), name);
  const clients: pg.Client[] = [];
  return {
    name,
    url,
    async client() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      clients.push(c);
      return c;
    },
    async drop() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await admin((c) => c.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** The admin URL with another database name (for URLs that must fail). */
export function adminUrlFor(database: string): string {
  return withDatabase(inject('adminUrl'), database);
}
