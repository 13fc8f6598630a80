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
      // Several operations in a tab need names, so the run button can ask which one.
      if (operations.length > 1) expect(operations.every((o) => o.name), label).toBe(true);
      const declared = new Set(operations.flatMap((o) => o.variableDefinitions?.map((v) => v.variable.name.value) ?? []));
      const variables = 'variables' in step && step.variables ? (JSON.parse(step.variables) as Record<string, unknown>) : {};
      expect(Object.keys(variables).filter((name) => !declared.has(name)), label).toEqual([]);
    });
    expect(TOUR.some((step) => step.query.includes('createWebhook('))).toBe(true);
  });

  it('webhooks step: creates a webhook (its secret in the answer), lists it, and reads its deliveries', async () => {
    const step = TOUR.find((s) => s.query.includes('createWebhook('));
    expect(step).toBeDefined();
    const names = operationsOf(step!.query).map((o) => o.name?.value);
    expect(names).toEqual(['CreateWebhook', 'Webhooks', 'Deliveries']);
    const variables = JSON.parse(('variables' in step! && step.variables) || '{}') as Record<string, unknown>;
    const run = async <T>(operationName: string, vars: Record<string, unknown>): Promise<T> => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: step!.query, variables: vars, operationName }),
      });
      const body = (await res.json()) as { data?: T; errors?: unknown[] };
      expect(body.errors, operationName).toBeUndefined();
      return body.data!;
    };
    // As pasted into the variables pane: the placeholder rides along, unused, until Deliveries.
    const created = await run<{ createWebhook: { webhook: { id: string }; secret: string } }>('CreateWebhook', variables);
    expect(created.createWebhook.secret).toMatch(/\S{16,}/);
    const listed = await run<{ webhooks: { nodes: Array<{ id: string }> } }>('Webhooks', variables);
    expect(listed.webhooks.nodes.map((w) => w.id)).toContain(created.createWebhook.webhook.id);
    const deliveries = await run<{ webhookDeliveries: { nodes: unknown[] } }>('Deliveries', { ...variables, webhookId: created.createWebhook.webhook.id });
    expect(Array.isArray(deliveries.webhookDeliveries.nodes)).toBe(true);
  });
});
