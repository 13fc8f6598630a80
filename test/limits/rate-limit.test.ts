import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer } from '../helpers/server.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('ratelimit');
});
afterAll(async () => {
  await db?.drop();
});

// tasks(first: 50) { nodes { id } } costs 1 + 50 * (1 + 1) = 101 points.
const COSTLY = '{ tasks(first: 50) { nodes { id } } }';

describe('rate limiting', () => {
  it('answers 429 RATE_LIMITED with Retry-After once an actor has spent its points, per address behind a trusted proxy', async () => {
    const server = await startServer(db.url, { RATE_LIMIT_POINTS_PER_MINUTE: '150', TRUST_PROXY: 'true' });
    try {
      const as = (address: string) => server.gql(COSTLY, {}, { 'x-forwarded-for': address });
      expect((await as('10.0.0.1')).status).toBe(200);
      const limited = await as('10.0.0.1');
      expect(limited.status).toBe(429);
      expect(limited.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });
      const retryAfter = Number(limited.headers.get('retry-after'));
      // 101 points needed, 49 left, 150 points a minute: 52 / 2.5 per second, about 21 s.
      expect(retryAfter).toBeGreaterThanOrEqual(20);
      expect(retryAfter).toBeLessThanOrEqual(21);
      // Another actor has its own bucket; a cheap operation still fits in the first one.
      expect((await as('10.0.0.2')).status).toBe(200);
      expect((await server.gql('{ __typename }', {}, { 'x-forwarded-for': '10.0.0.1' })).status).toBe(200);
      // A client writing its own X-Forwarded-For in front of what the balancer appends gets no fresh bucket: the
      // address is the one the trusted hop saw.
      const spoofed = await as('203.0.113.7, 10.0.0.1');
      expect(spoofed.status).toBe(429);
    } finally {
      await server.stop();
    }
  });

  it('reads the client address as many hops from the right as TRUST_PROXY trusts, or past the listed proxies', async () => {
    for (const [trust, spoofedFirst] of [['2', true], ['loopback, 10.0.0.0/8', true], ['1', false]] as const) {
      const server = await startServer(db.url, { RATE_LIMIT_POINTS_PER_MINUTE: '150', TRUST_PROXY: trust });
      try {
        // The client wrote 198.51.100.1; a balancer at 10.0.0.5 appended 192.0.2.9 (the address it saw).
        const chain = '198.51.100.1, 192.0.2.9, 10.0.0.5';
        expect((await server.gql(COSTLY, {}, { 'x-forwarded-for': chain })).status).toBe(200);
        // Two hops (or the listed proxies): the address is 192.0.2.9, whatever the client puts before it.
        // One hop: it is 10.0.0.5, the nearest entry.
        expect((await server.gql(COSTLY, {}, { 'x-forwarded-for': '203.0.113.50, 192.0.2.9, 10.0.0.5' })).status).toBe(429);
        const otherActor = spoofedFirst ? '198.51.100.1, 192.0.2.77, 10.0.0.5' : '198.51.100.1, 192.0.2.9, 10.0.0.6';
        expect((await server.gql(COSTLY, {}, { 'x-forwarded-for': otherActor })).status).toBe(200);
      } finally {
        await server.stop();
      }
    }
  });

  it('is off with RATE_LIMIT_POINTS_PER_MINUTE=0', async () => {
    const server = await startServer(db.url, {});
    try {
      for (let i = 0; i < 5; i++) expect((await server.gql(COSTLY)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe('the operation timeout', () => {
  it('answers SERVICE_UNAVAILABLE with reason OPERATION_TIMEOUT after OPERATION_TIMEOUT_MS', async () => {
    const server = await startServer(db.url, { OPERATION_TIMEOUT_MS: '300' });
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "slow" }) { id } }');
      const id = created.body.data!.createTask.id;
      await locker.query('begin');
      await locker.query('select 1 from task where id = $1 for update', [id]);
      const started = Date.now();
      const res = await server.gql(`mutation { updateTask(id: "${id}", input: { title: "later" }) { id } }`);
      expect(res.status).toBe(503);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', reason: 'OPERATION_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(2000);
      await locker.query('commit');
      expect((await server.gql('{ __typename }')).status).toBe(200);
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
      await server.stop();
    }
  });
});
