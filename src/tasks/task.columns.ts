/**
 * Which `task` columns an operation's reads need: the columns of every Task field its document can ask for,
 * found once per document (Apollo hands the same parsed document back for a repeated query). A page of Q3 then
 * reads 8 columns instead of 25: PostgreSQL formats fewer values (timestamps are the dear ones), the wire carries
 * less, and the driver parses less.
 *
 * Records read this way lack the other fields; that is safe because every Task the operation resolves comes from
 * its own loaders and listings, and every field it can select is in the set. Mutations lock and read whole rows.
 */
import { Kind, TypeInfo, isInterfaceType, isObjectType, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';

/** The columns behind each Task field; a field not listed (and not in {@link RELATIONAL}) makes the read take every column. */
const FIELD_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  id: ['id'],
  title: ['title'],
  description: ['description'],
  type: ['type'],
  priority: ['priority'],
  status: ['status'],
  assignee: ['assignee'],
  createdBy: ['created_by'],
  tags: ['tags'],
  metadata: ['metadata'],
  context: ['context'],
  progress: ['progress'],
  result: ['result'],
  errorMessage: ['error_message'],
  retryCount: ['retry_count'],
  estimatedMinutes: ['estimated_minutes'],
  actualMinutes: ['actual_minutes'],
  dueAt: ['due_at'],
  startedAt: ['started_at'],
  completedAt: ['completed_at'],
  archivedAt: ['archived_at'],
  createdAt: ['created_at'],
  updatedAt: ['updated_at'],
  version: ['version'],
  parent: ['parent_id'],
};

/** Fields resolved from other tables (by id) or from the status (always read). */
const RELATIONAL = new Set(['subtasks', 'subtaskSummary', 'dependencies', 'dependents', 'isBlocked', 'availableTransitions', 'executions', 'events', '__typename']);

/** Read whatever the operation asks: the id, the parent (parent resolver) and the status (blockers, transitions). */
const ALWAYS = ['id', 'parent_id', 'status'];

/** A set of `task` columns to read. */
export class TaskColumns {
  readonly names: readonly string[];

  constructor(names: Iterable<string>) {
    this.names = [...new Set([...ALWAYS, ...names])].sort();
  }

  /** The select list for table alias `alias`, with `extra` columns (a listing's order keys) added. */
  select(alias: string, extra: readonly string[] = []): string {
    return this.with(extra)
      .map((c) => `${alias}.${c}`)
      .join(', ');
  }

  /** A JSON object of the row under `alias` with these columns (as `to_json` would write them). */
  json(alias: string): string {
    return `json_build_object(${this.names.map((c) => `'${c}', ${alias}.${c}`).join(', ')})`;
  }

  private with(extra: readonly string[]): readonly string[] {
    return extra.every((c) => this.names.includes(c)) ? this.names : [...new Set([...this.names, ...extra])];
  }
}

const cache = new WeakMap<DocumentNode, TaskColumns | null>();

/**
 * The columns that `document` can need, or undefined for every column (a Task field this module does not know).
 * Fields asked on an interface Task implements (Node) count as asked on Task.
 */
export function taskColumnsOf(schema: GraphQLSchema, document: DocumentNode): TaskColumns | undefined {
  const cached = cache.get(document);
  if (cached !== undefined) return cached ?? undefined;
  const task = schema.getType('Task');
  if (!isObjectType(task)) return undefined;
  const fields = new Set<string>();
  let unknown = false;
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      [Kind.FIELD](node) {
        const parent = typeInfo.getParentType();
        const onTask = parent === task || (isInterfaceType(parent) && schema.isSubType(parent, task));
        if (!onTask) return;
        const name = node.name.value;
        if (FIELD_COLUMNS[name]) for (const c of FIELD_COLUMNS[name]) fields.add(c);
        else if (!RELATIONAL.has(name)) unknown = true;
      },
    }),
  );
  const columns = unknown ? null : new TaskColumns(fields);
  cache.set(document, columns);
  return columns ?? undefined;
}
