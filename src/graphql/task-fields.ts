/**
 * Which Task fields an operation's document can ask for, found once per document (Apollo hands the same parsed
 * document back for a repeated query), and the `task` columns they need: a field named after a property of the
 * Task entity reads that property's column; the fields below are resolved from other tables or computed.
 *
 * Views read this way lack the other columns; that is safe because every Task the operation resolves comes from
 * its own loaders and listings, and every field it can select is in the set. Mutations return whole entities.
 */
import { Kind, TypeInfo, isInterfaceType, isObjectType, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';
import { columnsFor, type TaskColumns, type TaskModel } from '../tasks/task.model.js';

/**
 * Task fields that have no column of their own: resolved from other tables by id (subtasks, dependencies, ...) or
 * from the status. Every other field of the Task type names a property of the entity (test/schema/entity.test.ts).
 */
export const COMPUTED_TASK_FIELDS: ReadonlySet<string> = new Set([
  'subtasks',
  'subtaskSummary',
  'dependencies',
  'dependents',
  'isBlocked',
  'availableTransitions',
  'executions',
  'events',
]);

/** Properties of the Task entity the API does not show (none today): every other property is a field of Task. */
export const INTERNAL_TASK_PROPERTIES: ReadonlySet<string> = new Set<string>();

const cache = new WeakMap<DocumentNode, ReadonlySet<string>>();

/** The Task fields `document` asks anywhere (fields asked on an interface Task implements, Node, count as asked on Task). */
export function taskFieldsOf(schema: GraphQLSchema, document: DocumentNode): ReadonlySet<string> {
  const cached = cache.get(document);
  if (cached) return cached;
  const task = schema.getType('Task');
  const fields = new Set<string>();
  if (isObjectType(task)) {
    const typeInfo = new TypeInfo(schema);
    visit(
      document,
      visitWithTypeInfo(typeInfo, {
        [Kind.FIELD](node) {
          const parent = typeInfo.getParentType();
          if (parent === task || (isInterfaceType(parent) && schema.isSubType(parent, task))) fields.add(node.name.value);
        },
      }),
    );
  }
  cache.set(document, fields);
  return fields;
}

/**
 * The columns `fields` need, or undefined for every column: a field that is neither a property of the entity nor
 * computed (a schema ahead of the entity) makes the read take them all.
 */
export function taskColumnsFor(model: TaskModel, fields: ReadonlySet<string>): TaskColumns | undefined {
  const properties: string[] = [];
  for (const field of fields) {
    if (field === '__typename' || COMPUTED_TASK_FIELDS.has(field)) continue;
    if (!model.columnOf.has(field)) return undefined;
    properties.push(field);
  }
  return columnsFor(model, properties);
}
