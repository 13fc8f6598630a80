/**
 * The benchmarked operations: their GraphQL documents and the POST bodies of the i-th request of each.
 *
 * Each document has a fixed `operationName`, which is how the raw baseline (bench/baseline) recognises it without
 * parsing GraphQL. Bodies are a pure function of the dataset and the request number, so a run is reproducible and
 * the EXPLAIN test (test/bench/explain.test.ts) sends exactly what the benchmark sends.
 */

export type ReadName = 'Q1' | 'Q2' | 'Q3' | 'Q4';

/** The fields of Q1: a dozen and a half scalar fields of one task. */
const Q1_FIELDS = 'id title description type priority status assignee createdBy tags metadata progress retryCount estimatedMinutes dueAt createdAt updatedAt version';

export const DOCS = {
  Q1: `query Q1($id: ID!) { task(id: $id) { ${Q1_FIELDS} } }`,
  Q2: `query Q2($status: [TaskStatus!], $first: Int = 50) {
  tasks(first: $first, filter: { status: $status, priority: [HIGH, CRITICAL] }, orderBy: [{ field: PRIORITY, direction: DESC }]) {
    edges { cursor node { id title status priority assignee dueAt parent { id title } dependencies { id status } isBlocked } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  Q3: `query Q3($assignee: String!) {
  tasks(first: 20, filter: { assignee: [$assignee] }) {
    totalCount
    nodes { id title status priority dueAt createdAt }
    pageInfo { hasNextPage endCursor }
  }
}`,
  Q4: `query Q4($after: String!) {
  tasks(first: 50, after: $after) {
    edges { cursor node { id title status priority assignee createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  /** Walks the default order 100 rows at a time to find the cursor Q4 starts after. */
  Walk: `query Walk($after: String) { tasks(first: 100, after: $after) { pageInfo { endCursor hasNextPage } } }`,
  M1: `mutation M1($input: CreateTaskInput!) { createTask(input: $input) { id title status priority tags version createdAt } }`,
  StartTask: `mutation StartTask($id: ID!) { startTask(id: $id) { id status startedAt version } }`,
  CompleteTask: `mutation CompleteTask($id: ID!, $result: String) {
  completeTask(id: $id, result: $result) { id status progress actualMinutes completedAt version }
}`,
} as const;

export type OperationName = keyof typeof DOCS;

/** A GraphQL-over-HTTP POST body. */
export function body(operationName: OperationName, variables: Record<string, unknown>): string {
  return JSON.stringify({ operationName, query: DOCS[operationName], variables });
}

/** What the read bodies draw on. */
export interface ReadFixtures {
  /** Every seeded task id. */
  taskIds: readonly string[];
  assignees: readonly string[];
  /** The cursor of the 5,000th row of the default order (see {@link DEEP_PAGE_ROWS}). */
  deepCursor: string;
}

/** Q4 starts after this many rows. */
export const DEEP_PAGE_ROWS = 5000;

/** Status filters Q2 cycles through: different pages, so no single page is all the database ever serves. */
export const Q2_STATUS_SETS = [['PENDING'], ['IN_PROGRESS'], ['PENDING', 'IN_PROGRESS'], ['BLOCKED', 'PENDING'], ['REVIEW', 'IN_PROGRESS']];

/** A stride coprime with any dataset size we use, so consecutive Q1 requests hit ids spread over the table. */
const Q1_STRIDE = 7919;

/** The variables of the i-th request of a read operation (the same on every server). */
export function readVariables(name: ReadName, f: ReadFixtures, i: number): Record<string, unknown> {
  switch (name) {
    case 'Q1':
      return { id: f.taskIds[(i * Q1_STRIDE) % f.taskIds.length] };
    case 'Q2':
      return { status: Q2_STATUS_SETS[i % Q2_STATUS_SETS.length] };
    case 'Q3':
      return { assignee: f.assignees[i % f.assignees.length] };
    case 'Q4':
      return { after: f.deepCursor };
  }
}

/** The body of the i-th request of a read operation. */
export function readBody(name: ReadName, f: ReadFixtures, i: number): string {
  return body(name, readVariables(name, f, i));
}

/** The i-th createTask: LOW priority and unassigned, so it never shows in Q2 or Q3. */
export function m1Body(i: number): string {
  return body('M1', { input: { title: `Bench task ${i}`, priority: 'LOW', tags: ['bench', 'load'], estimatedMinutes: 30 } });
}

export const startBody = (id: string): string => body('StartTask', { id });
export const completeBody = (id: string): string => body('CompleteTask', { id, result: 'done' });

/** The 80/20 mix, as one repeating sequence of 10 requests: 8 reads, 2 writes. */
export const MIX_SEQUENCE: ReadonlyArray<ReadName | 'M1'> = ['Q1', 'Q2', 'Q1', 'Q3', 'M1', 'Q1', 'Q4', 'Q2', 'Q1', 'M1'];

/** How deep Q4 starts: {@link DEEP_PAGE_ROWS}, or half of a dataset too small for that (in steps of 100). */
export function deepRows(tasks: number): number {
  return Math.max(100, Math.min(DEEP_PAGE_ROWS, Math.floor(tasks / 200) * 100));
}

/** The cursor after the first `rows` rows of the default order, walked 100 rows at a time. */
export async function walkDeepCursor(url: string, rows: number): Promise<string> {
  let after: string | null = null;
  for (let walked = 0; walked < rows; walked += 100) {
    const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body('Walk', { after }) });
    const json = (await res.json()) as { data?: { tasks?: { pageInfo?: { endCursor?: string | null } } }; errors?: unknown };
    const next = json.data?.tasks?.pageInfo?.endCursor;
    if (!next) throw new Error(`walking to row ${rows} failed at row ${walked}: ${JSON.stringify(json).slice(0, 400)}`);
    after = next;
  }
  return after as string;
}

/**
 * How one server's schema spells the benchmarked operations: the bodies it is sent and how its deep cursor is found.
 * Ours and the baseline share {@link OUR_DIALECT}; PostGraphile has its own (bench/postgraphile/operations.ts).
 */
export interface Dialect {
  readBody(name: ReadName, f: ReadFixtures, i: number): string;
  m1Body(i: number): string;
  /** startTask / completeTask bodies; undefined when the server has no such operations (M2 is not run on it). */
  transitions?: { start(id: string): string; complete(id: string): string };
  walkDeepCursor(url: string, rows: number): Promise<string>;
}

export const OUR_DIALECT: Dialect = { readBody, m1Body, transitions: { start: startBody, complete: completeBody }, walkDeepCursor };
