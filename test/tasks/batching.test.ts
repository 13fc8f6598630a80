import { beforeAll, describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('batching');

beforeAll(async () => {
  // 60 tagged tasks, each with a parent, two subtasks, a dependency, a dependent and an execution.
  const c = await db.client();
  await c.query(`
    insert into task (id, title, type, priority, created_by, tags, created_at, updated_at)
    select gen_random_uuid(), 'parent ' || g, 'FEATURE', 'MEDIUM', 'seed', '{}', now(), now() from generate_series(1, 60) g;
    insert into task (id, title, type, priority, created_by, tags, parent_id, created_at, updated_at)
    select gen_random_uuid(), 'page ' || row_number() over (), 'FEATURE', 'HIGH', 'seed', '{page}', p.id,
           now() - (row_number() over ()) * interval '1 second', now()
      from task p where p.title like 'parent %';
    insert into task (id, title, type, priority, created_by, tags, parent_id, status, created_at, updated_at)
    select gen_random_uuid(), 'sub ' || t.title || ' ' || g, 'FEATURE', 'LOW', 'seed', '{}', t.id,
           case when g = 1 then 'COMPLETED'::task_status else 'PENDING'::task_status end, now(), now()
      from task t cross join generate_series(1, 2) g where 'page' = any(t.tags);
    insert into task_dependency (task_id, depends_on_id, created_at)
    select t.id, t.parent_id, now() from task t where 'page' = any(t.tags);
    insert into task_dependency (task_id, depends_on_id, created_at)
    select s.id, s.parent_id, now() from task s where s.title like 'sub % 2';
    insert into task_execution (id, task_id, status, started_at, progress)
    select gen_random_uuid(), t.id, 'IN_PROGRESS', now(), 0 from task t where 'page' = any(t.tags);
  `);
  await c.end();
});

const NESTED = `query Nested($first: Int) {
  tasks(first: $first, filter: { tagsAny: ["page"] }) {
    nodes {
      id title
      parent { id title }
      dependencies { id status }
      dependents { id }
      isBlocked
      availableTransitions
      subtaskSummary { total completed percentCompleted }
      subtasks(first: 5) { totalCount nodes { id title } }
      executions(first: 5) { nodes { id status } }
      events(first: 5) { nodes { kind } }
    }
  }
}`;

interface Nested {
  tasks: {
    nodes: Array<{
      parent: { id: string } | null;
      dependencies: unknown[];
      dependents: unknown[];
      isBlocked: boolean;
      subtaskSummary: { total: number; completed: number; percentCompleted: number };
      subtasks: { totalCount: number; nodes: unknown[] };
      executions: { nodes: unknown[] };
    }>;
  };
}

async function statementsFor(first: number): Promise<number> {
  const requestId = `nested-${first}`;
  const res = await server.gql<Nested>(NESTED, { first }, { 'x-request-id': requestId });
  expect(res.body.errors).toBeUndefined();
  const nodes = res.body.data!.tasks.nodes;
  expect(nodes).toHaveLength(first);
  for (const n of nodes) {
    expect(n.parent).not.toBeNull();
    expect(n.dependencies).toHaveLength(1);
    expect(n.dependents).toHaveLength(1);
    expect(n.isBlocked).toBe(true);
    expect(n.subtaskSummary).toEqual({ total: 2, completed: 1, percentCompleted: 50 });
    expect(n.subtasks.totalCount).toBe(2);
    expect(n.subtasks.nodes).toHaveLength(2);
    expect(n.executions.nodes).toHaveLength(1);
  }
  return (await server.report(requestId)).sqlStatements;
}

describe('batching', () => {
  it('answers a nested page of tasks with the same, small number of statements for 10 and for 50 tasks', async () => {
    const ten = await statementsFor(10);
    const fifty = await statementsFor(50);
    expect(fifty).toBe(ten);
    // The page with its rows' parents and dependencies (isBlocked and availableTransitions read their blockers from
    // them), then dependents, subtask summaries, subtask pages, subtask counts, executions and events: one
    // statement each, 7 in all.
    expect(ten).toBe(7);
  });

  it('answers a parent and dependencies read with the page exactly as the same tasks read on their own', async () => {
    // The page statement brings related tasks as JSON (other text for timestamps, arrays and objects): every field
    // must come out as the by-id read gives it.
    const c = await db.client();
    await c.query(`update task set description = 'with "quotes" and é', metadata = '{"points": 3, "nested": {"a": [1, null]}}',
                   context = '{"k": "v"}', due_at = '2031-02-03 04:05:06.789+00', tags = '{x,"y z"}', estimated_minutes = 7,
                   result = 'r', retry_count = 2
                   where title like 'parent %'`);
    await c.end();
    const FIELDS = 'id title description type priority status assignee createdBy tags metadata context progress result errorMessage retryCount estimatedMinutes actualMinutes dueAt startedAt completedAt archivedAt createdAt updatedAt version';
    const page = await server.gql<{ tasks: { nodes: Array<{ parent: Record<string, unknown>; dependencies: Array<Record<string, unknown>> }> } }>(
      `{ tasks(first: 5, filter: { tagsAny: ["page"] }) { nodes { parent { ${FIELDS} } dependencies { ${FIELDS} } } } }`,
    );
    expect(page.body.errors).toBeUndefined();
    const nodes = page.body.data!.tasks.nodes;
    expect(nodes).toHaveLength(5);
    for (const node of nodes) {
      const alone = await server.gql<{ task: Record<string, unknown> }>(`query($id: ID!) { task(id: $id) { ${FIELDS} } }`, { id: node.parent.id });
      expect(alone.body.data!.task.dueAt).toBe('2031-02-03T04:05:06.789Z');
      expect(node.parent).toEqual(alone.body.data!.task);
      expect(node.dependencies).toEqual([alone.body.data!.task]);
    }
  });
});
