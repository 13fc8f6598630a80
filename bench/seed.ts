/**
 * The benchmark dataset: a deterministic set of tasks (a seeded PRNG, fixed dates) written straight into the
 * tables the migrations create, bypassing the API, so 100,000 tasks take seconds rather than minutes.
 *
 * The same seed gives byte-identical rows on every machine, which is what makes two runs (and the EXPLAIN test,
 * which imports this module) comparable. Rows go in through `INSERT ... SELECT FROM unnest($1::uuid[], ...)`:
 * one bind parameter per column per batch, so a batch of thousands of rows is a single statement.
 */
import type pg from 'pg';

/** Anything that runs a statement: a client, a pool client or a pool. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.Client, 'query'>;

export interface SeedOptions {
  /** How many tasks (default 100,000). */
  tasks: number;
  /** PRNG seed (default 42): the same seed, the same dataset. */
  seed?: number;
  /** Rows per INSERT statement. */
  batchSize?: number;
}

export interface SeededDataset {
  /** Every task id, in creation order (oldest first). */
  taskIds: string[];
  /** The assignee names in use (some tasks are unassigned). */
  assignees: readonly string[];
  withParent: number;
  dependencyEdges: number;
}

/** The newest seeded task is created just before this instant; fixed so that dates do not depend on "now". */
export const SEED_ANCHOR = Date.UTC(2026, 0, 1);
const YEAR_MS = 365 * 24 * 3600_000;
const DAY_MS = 24 * 3600_000;

export const ASSIGNEES: readonly string[] = [
  'ada', 'alan', 'barbara', 'bjarne', 'brian', 'charles', 'claude', 'dennis', 'donald', 'edsger',
  'frances', 'grace', 'guido', 'hedy', 'ivan', 'james', 'jean', 'john', 'ken', 'larry',
  'leslie', 'linus', 'margaret', 'mary', 'niklaus', 'radia', 'richard', 'rob', 'ross', 'sophie',
  'tim', 'tony', 'ward', 'whitfield', 'yukihiro', 'adele', 'anita', 'annie', 'betty', 'carol',
  'dorothy', 'evelyn', 'fran', 'joan', 'karen', 'kathleen', 'lois', 'marlyn', 'ruth', 'susan',
];
const CREATORS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'ci-bot', 'importer'];
const VERBS = ['Implement', 'Fix', 'Refactor', 'Document', 'Investigate', 'Deploy', 'Update', 'Optimize', 'Review', 'Migrate', 'Add', 'Remove', 'Test', 'Design', 'Configure'];
const NOUNS = ['login flow', 'billing service', 'search index', 'user profile page', 'API gateway', 'cache layer', 'report export',
  'notification queue', 'payment webhook', 'dashboard', 'audit log', 'rate limiter', 'session store', 'email templates',
  'data pipeline', 'feature flags', 'onboarding wizard', 'CSV import', 'access control', 'metrics endpoint'];
const TAGS = ['backend', 'frontend', 'infra', 'security', 'perf', 'ux', 'docs', 'db', 'api', 'mobile', 'ops', 'tech-debt',
  'customer', 'q1', 'q2', 'q3', 'q4', 'urgent', 'blocked-external', 'design', 'research', 'testing', 'release', 'i18n',
  'analytics', 'billing', 'auth', 'search', 'email', 'ci'];
const SENTENCES = ['Customers reported this twice last week.', 'See the linked design document for the details.',
  'Needs a migration and a rollout plan.', 'Reproduce locally before changing anything.', 'Pair with the on-call engineer.',
  'The current behaviour is documented in the runbook.', 'Measure before and after.', 'Keep the old endpoint until clients move.'];
const TYPES = ['FEATURE', 'BUG_FIX', 'REFACTOR', 'DOCUMENTATION', 'RESEARCH', 'DEPLOYMENT', 'MAINTENANCE', 'DEVELOPMENT', 'OPTIMIZATION', 'SYSTEM'];
const TYPE_WEIGHTS = [30, 25, 10, 5, 5, 5, 8, 7, 3, 2];
const PRIORITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const PRIORITY_WEIGHTS = [30, 40, 20, 10];
const STATUSES = ['PENDING', 'IN_PROGRESS', 'REVIEW', 'BLOCKED', 'COMPLETED', 'FAILED', 'CANCELLED'];
const STATUS_WEIGHTS = [25, 12, 5, 5, 38, 5, 10];

/** mulberry32: tiny, fast, and good enough to make realistic-looking data reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Helpers over one PRNG stream. */
function randomTools(rand: () => number) {
  const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const weighted = <T>(items: readonly T[], weights: readonly number[]): T => {
    const total = weights.reduce((a, b) => a + b, 0);
    let r = rand() * total;
    for (let i = 0; i < items.length; i++) if ((r -= weights[i] ?? 0) < 0) return items[i] as T;
    return items[items.length - 1] as T;
  };
  const uuid = () => {
    const hex = Array.from({ length: 16 }, () => int(0, 255));
    hex[6] = ((hex[6] ?? 0) & 0x0f) | 0x40; // version 4 layout, so it looks like what the server generates
    hex[8] = ((hex[8] ?? 0) & 0x3f) | 0x80;
    const s = hex.map((b) => b.toString(16).padStart(2, '0')).join('');
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  };
  return { rand, int, pick, weighted, uuid };
}

/** The columns we fill, in order, with the array type each travels as. */
const COLUMNS: Array<[name: string, arrayType: string, select: string]> = [
  ['id', 'uuid[]', 'id'], ['title', 'text[]', 'title'], ['description', 'text[]', 'description'],
  ['type', 'text[]', 'type::task_type'], ['priority', 'text[]', 'priority::task_priority'], ['status', 'text[]', 'status::task_status'],
  ['assignee', 'text[]', 'assignee'], ['created_by', 'text[]', 'created_by'],
  // Tags travel as comma-joined text: PostgreSQL multidimensional arrays must be rectangular.
  ['tags', 'text[]', "string_to_array(tags, ',')"], ['metadata', 'text[]', 'metadata::jsonb'], ['context', 'text[]', 'context::jsonb'],
  ['progress', 'float8[]', 'progress'], ['result', 'text[]', 'result'], ['error_message', 'text[]', 'error_message'],
  ['retry_count', 'int[]', 'retry_count'], ['estimated_minutes', 'int[]', 'estimated_minutes'], ['actual_minutes', 'int[]', 'actual_minutes'],
  ['due_at', 'timestamptz[]', 'due_at'], ['started_at', 'timestamptz[]', 'started_at'], ['completed_at', 'timestamptz[]', 'completed_at'],
  ['archived_at', 'timestamptz[]', 'archived_at'], ['created_at', 'timestamptz[]', 'created_at'], ['updated_at', 'timestamptz[]', 'updated_at'],
  ['version', 'int[]', 'version'], ['parent_id', 'uuid[]', 'parent_id'],
];

type Row = Array<string | number | null>;
const column = (name: string) => COLUMNS.findIndex(([n]) => n === name);
const CREATED_AT = column('created_at');
const PARENT_ID = column('parent_id');

/** One task row, in {@link COLUMNS} order. `ids` holds the ids of the tasks made so far (parents come from there). */
function makeTask(i: number, total: number, ids: string[], r: ReturnType<typeof randomTools>): Row {
  const createdAt = SEED_ANCHOR - YEAR_MS + Math.floor(((i + r.rand()) * YEAR_MS) / total);
  const status = r.weighted(STATUSES, STATUS_WEIGHTS);
  const started = status !== 'PENDING' && !(status === 'CANCELLED' && r.rand() < 0.5) && !(status === 'BLOCKED' && r.rand() < 0.5);
  const startedAt = started ? createdAt + r.int(1, 72) * 3600_000 : null;
  const finished = status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED';
  const completedAt = finished ? (startedAt ?? createdAt) + r.int(10, 20_000) * 60_000 : null;
  const archivedAt = (status === 'COMPLETED' || status === 'CANCELLED') && r.rand() < 0.1 ? (completedAt ?? createdAt) + r.int(1, 30) * DAY_MS : null;
  const progress = status === 'COMPLETED' ? 1 : status === 'PENDING' ? 0 : status === 'REVIEW' ? 0.9 : Math.round(r.rand() * 80) / 100;
  const assignee = r.rand() < 0.15 ? null : ASSIGNEES[Math.min(ASSIGNEES.length - 1, Math.floor(ASSIGNEES.length * r.rand() ** 1.3))] ?? null;
  const tags = Array.from(new Set(Array.from({ length: r.weighted([0, 1, 2, 3, 4], [15, 35, 30, 15, 5]) }, () => r.pick(TAGS))));
  const description = r.rand() < 0.7 ? Array.from({ length: r.int(1, 3) }, () => r.pick(SENTENCES)).join(' ') : null;
  const metadata = JSON.stringify({ source: r.pick(['web', 'api', 'import', 'slack']), points: r.pick([1, 2, 3, 5, 8, 13]) });
  const context = r.rand() < 0.3 ? JSON.stringify({ env: r.pick(['staging', 'production']), region: r.pick(['eu', 'us']) }) : '{}';
  // ~30% are subtasks of a recent earlier task: parents are always older, so the hierarchy has no loops.
  const parentId = i > 0 && r.rand() < 0.3 ? (ids[Math.max(0, i - r.int(1, 2000))] ?? null) : null;
  const last = Math.max(createdAt, startedAt ?? 0, completedAt ?? 0, archivedAt ?? 0);
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return [
    r.uuid(),
    `${r.pick(VERBS)} ${r.pick(NOUNS)} #${i + 1}`,
    description,
    r.weighted(TYPES, TYPE_WEIGHTS),
    r.weighted(PRIORITIES, PRIORITY_WEIGHTS),
    status,
    assignee,
    r.pick(CREATORS),
    tags.join(','),
    metadata,
    context,
    progress,
    status === 'COMPLETED' ? 'Done; see the linked change.' : null,
    status === 'FAILED' ? 'The job exited with code 1.' : null,
    status === 'FAILED' ? r.int(0, 3) : 0,
    r.rand() < 0.6 ? r.pick([15, 30, 60, 120, 240, 480, 960]) : null,
    status === 'COMPLETED' && startedAt !== null && completedAt !== null ? Math.round((completedAt - startedAt) / 60_000) : null,
    r.rand() < 0.45 ? iso(createdAt + r.int(1, 60) * DAY_MS) : null,
    iso(startedAt),
    iso(completedAt),
    iso(archivedAt),
    iso(createdAt),
    iso(last + r.int(0, 3600) * 1000),
    1 + (started ? 1 : 0) + (finished ? 1 : 0) + r.int(0, 3),
    parentId,
  ];
}

/** Inserts rows (arrays in {@link COLUMNS} order) in one statement. */
async function insertTasks(db: Queryable, rows: Row[]): Promise<void> {
  const params = COLUMNS.map((_, c) => rows.map((row) => row[c] ?? null));
  const names = COLUMNS.map(([name]) => name);
  await db.query(
    `insert into task (${names.join(', ')})
     select ${COLUMNS.map(([, , select]) => select).join(', ')}
     from unnest(${COLUMNS.map(([, type], c) => `$${c + 1}::${type}`).join(', ')}) as u(${names.join(', ')})`,
    params,
  );
}

/**
 * Seeds `options.tasks` tasks and their dependency edges into an empty, migrated database, then VACUUM ANALYZEs.
 * ~30% of tasks have a parent, ~10% depend on 1-3 earlier tasks, ~15% are unassigned, 50 assignees.
 */
export async function seedTasks(db: Queryable, options: SeedOptions): Promise<SeededDataset> {
  const r = randomTools(prng(options.seed ?? 42));
  const batchSize = options.batchSize ?? 5000;
  const ids: string[] = [];
  const edges: Array<[string, string, string]> = [];
  let withParent = 0;
  let batch: Row[] = [];
  for (let i = 0; i < options.tasks; i++) {
    const row = makeTask(i, options.tasks, ids, r);
    const id = row[0] as string;
    ids.push(id);
    if (row[PARENT_ID] !== null) withParent++;
    // ~10% wait for 1-3 recent earlier tasks: edges point backwards in time, so there is no cycle.
    if (i > 10 && r.rand() < 0.1) {
      const targets = new Set(Array.from({ length: r.int(1, 3) }, () => ids[Math.max(0, i - r.int(1, 500))] as string));
      for (const target of targets) edges.push([id, target, row[CREATED_AT] as string]);
    }
    batch.push(row);
    if (batch.length === batchSize) {
      await insertTasks(db, batch);
      batch = [];
    }
  }
  if (batch.length) await insertTasks(db, batch);
  for (let i = 0; i < edges.length; i += batchSize) {
    const slice = edges.slice(i, i + batchSize);
    await db.query(
      `insert into task_dependency (task_id, depends_on_id, created_at) select * from unnest($1::uuid[], $2::uuid[], $3::timestamptz[])`,
      [slice.map((e) => e[0]), slice.map((e) => e[1]), slice.map((e) => e[2])],
    );
  }
  // VACUUM as well, as autovacuum soon would after a bulk load: with the visibility map set, a count can read an
  // index alone (Q3's totalCount), as it does on any database that has been up for a while.
  await db.query('vacuum analyze');
  return { taskIds: ids, assignees: ASSIGNEES, withParent, dependencyEdges: edges.length };
}

/**
 * Inserts `count` PENDING tasks without dependencies for the start/complete benchmark, dated long before the
 * dataset and LOW priority, so no benchmarked listing (Q2, Q3, Q4) ever shows them. Returns their ids.
 */
export async function createPendingPool(db: Queryable, count: number, label: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `insert into task (id, title, type, priority, status, created_by, tags, created_at, updated_at, version)
     select gen_random_uuid(), $1 || ' #' || n, 'MAINTENANCE', 'LOW', 'PENDING', 'bench-pool', '{bench}',
            timestamptz '2000-01-01' + n * interval '1 millisecond', timestamptz '2000-01-01' + n * interval '1 millisecond', 1
     from generate_series(1, $2::int) as n
     returning id`,
    [label, count],
  );
  return rows.map((r) => r.id);
}

/**
 * Takes away what the benchmark's writes added (createTask rows, M2 pools, their executions and events) and
 * vacuums, so every measurement reads the dataset as seeded. Without it, each write run leaves thousands of new
 * rows at the head of the newest-first order, and the reads after it (Q3 most) slow down run after run.
 */
export async function resetDataset(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `with gone as (delete from task where created_by = 'bench-pool' or (created_by = 'anonymous' and title like 'Bench task %') returning id),
          events as (delete from task_event where task_id in (select id from gone))
     select count(*)::int as n from gone`,
  );
  await db.query('vacuum analyze task, task_event, task_execution');
  return rows[0]?.n ?? 0;
}
