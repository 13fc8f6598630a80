/**
 * The playground's tour without a browser: every step is a valid document against schema.graphql, numbered in
 * order, with JSON variables that its operations declare; and the webhooks step runs over HTTP as its comment says
 * (create, list, then the deliveries of the webhook it created). browser.test.ts runs steps in Chromium.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Kind, buildSchema, parse, validate, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';
import { TOUR } from '../../playground/src/tour.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const { server } = useServer('playground_tour');

const operationsOf = (query: string) => parse(query).definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);

describe('the tour', () => {
  it('is numbered steps, each valid against the schema, with JSON variables its operations declare', () => {
    const schema = buildSchema(readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));
    TOUR.forEach((step, index) => {
      const label = `step ${index + 1}`;
      expect(step.query.startsWith(`# ${index + 1}. `), label).toBe(true);
      expect(validate(schema, parse(step.query)), label).toEqual([]);
      const operations = operationsOf(step.query);
      // One anonymous operation per tab (see playground/src/tour.ts).
      expect(operations.map((o) => o.name?.value), label).toEqual([undefined]);
      const declared = new Set(operations.flatMap((o) => o.variableDefinitions?.map((v) => v.variable.name.value) ?? []));
      const variables = 'variables' in step && step.variables ? (JSON.parse(step.variables) as Record<string, unknown>) : {};
      expect(Object.keys(variables).filter((name) => !declared.has(name)), label).toEqual([]);
    });
    expect(TOUR.some((step) => step.query.includes('createWebhook('))).toBe(true);
  });

  it('webhooks steps: create a webhook (its secret in the answer), then read it and its deliveries', async () => {
    const create = TOUR.find((s) => s.query.includes('createWebhook('));
    const read = TOUR.find((s) => s.query.includes('webhookDeliveries('));
    expect(create && read).toBeDefined();
    const run = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data?: T; errors?: unknown[] };
      expect(body.errors).toBeUndefined();
      return body.data!;
    };
    const created = await run<{ createWebhook: { webhook: { id: string }; secret: string } }>(create!.query, {});
    expect(created.createWebhook.secret).toMatch(/\S{16,}/);
    const id = created.createWebhook.webhook.id;
    const found = await run<{ webhook: { url: string }; webhookDeliveries: { nodes: unknown[] } }>(read!.query, { webhookId: id });
    expect(found.webhook.url).toBe('https://hooks.example.com/tasks');
    expect(Array.isArray(found.webhookDeliveries.nodes)).toBe(true);
  });
});
