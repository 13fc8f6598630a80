/**
 * The Task entity and the GraphQL schema describe one model: every field of `Task` reads a property of the entity
 * (or is computed from other tables), every property is a field unless listed as internal, with the same
 * nullability; every order field, filter field and input field names a property or has a rule of its own. A column
 * added to one side only fails here, not silently at run time.
 */
import { buildSchema, getNullableType, isInputObjectType, isListType, isNonNullType, isObjectType, type GraphQLInputObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { loadTypeDefs } from '../../src/graphql/schema.js';
import { COMPUTED_TASK_FIELDS, INTERNAL_TASK_PROPERTIES } from '../../src/graphql/task-fields.js';
import { RULED_FILTER_FIELDS } from '../../src/tasks/task.filters.js';
import { taskModel } from '../../src/tasks/task.model.js';
import { metadataOnly } from '../helpers/metadata.js';

const schema = buildSchema(loadTypeDefs());
const model = taskModel(metadataOnly().em);
const taskType = schema.getType('Task');
if (!isObjectType(taskType)) throw new Error('the schema has no Task type');
const fields = taskType.getFields();
const properties = [...model.columnOf.keys()];
const nullable = (property: string) => model.propertyOf.get(model.columnOf.get(property)!)?.nullable === true;

function inputType(name: string): GraphQLInputObjectType {
  const type = schema.getType(name);
  if (!isInputObjectType(type)) throw new Error(`the schema has no input ${name}`);
  return type;
}

describe('the Task entity and the GraphQL Task type', () => {
  it('every field of Task is a property of the entity, or computed from other tables', () => {
    const orphans = Object.keys(fields).filter((f) => !model.columnOf.has(f) && !COMPUTED_TASK_FIELDS.has(f));
    expect(orphans).toEqual([]);
    // A computed field must not shadow a column: it would never be read.
    expect([...COMPUTED_TASK_FIELDS].filter((f) => model.columnOf.has(f))).toEqual([]);
    expect([...COMPUTED_TASK_FIELDS].filter((f) => !(f in fields))).toEqual([]);
  });

  it('every property of the entity is a field of Task, unless listed as internal', () => {
    expect(properties.filter((p) => !(p in fields) && !INTERNAL_TASK_PROPERTIES.has(p))).toEqual([]);
    expect(properties.length).toBeGreaterThanOrEqual(25);
  });

  it('a field is non-null exactly when its column is NOT NULL', () => {
    const disagreeing = properties.filter((p) => p in fields && isNonNullType(fields[p]!.type) === nullable(p));
    expect(disagreeing).toEqual([]);
  });

  it('every TaskOrderField sorts by a property (DUE_AT by dueAt)', () => {
    const orderField = schema.getType('TaskOrderField');
    const values = orderField && 'getValues' in orderField ? orderField.getValues().map((v) => v.name) : [];
    expect(values.length).toBeGreaterThan(0);
    const camel = (v: string) => v.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    expect(values.filter((v) => !model.columnOf.has(camel(v)))).toEqual([]);
  });

  it('every TaskFilter field has a rule of its own or names a property and takes a list of its values', () => {
    const unruled = Object.values(inputType('TaskFilter').getFields()).filter((f) => !RULED_FILTER_FIELDS.has(f.name));
    expect(unruled.map((f) => f.name)).toEqual(expect.arrayContaining(['assignee', 'createdBy', 'priority', 'status', 'type']));
    for (const f of unruled) {
      expect(model.columnOf.has(f.name), f.name).toBe(true);
      expect(isListType(getNullableType(f.type)), f.name).toBe(true);
    }
    expect([...RULED_FILTER_FIELDS].filter((f) => !(f in inputType('TaskFilter').getFields()))).toEqual([]);
  });

  it('every field of CreateTaskInput and UpdateTaskInput writes a property (parentId the parent)', () => {
    for (const input of ['CreateTaskInput', 'UpdateTaskInput']) {
      const names = Object.keys(inputType(input).getFields()).map((f) => (f === 'parentId' ? 'parent' : f));
      expect(names.filter((n) => !model.columnOf.has(n)), input).toEqual([]);
    }
  });
});

describe('what is derived from the metadata', () => {
  it('events report every property but the key, the version and the write stamps', () => {
    const reported = model.tracked.map((t) => t.name);
    expect(reported).toContain('parentId');
    expect(reported).not.toEqual(expect.arrayContaining(['id']));
    const expected = properties.filter((p) => !['id', 'version', 'createdAt', 'updatedAt', 'createdBy'].includes(p)).map((p) => (p === 'parent' ? 'parentId' : p));
    expect(reported.sort()).toEqual(expected.sort());
  });

  it('a row becomes a view through the ORM mapper: columns to properties, timestamps to Dates when read, the parent as its id', () => {
    const view = model.toView({ id: 'a', title: 'x', due_at: '2026-01-02 03:04:05.678+00', created_at: 'infinity', parent_id: 'p', listing_total: 3 });
    expect(Object.fromEntries(Object.entries(view))).toEqual({ id: 'a', title: 'x', parent: { id: 'p' } });
    expect(view.dueAt).toEqual(new Date('2026-01-02T03:04:05.678Z'));
    // A value no Date can hold stays PostgreSQL's text, for the DateTime scalar to refuse (never an invented instant).
    expect(view.createdAt as unknown).toBe('infinity');
    expect('listing_total' in view).toBe(false);
    view.dueAt = null;
    expect(view.dueAt).toBeNull();
  });
});
