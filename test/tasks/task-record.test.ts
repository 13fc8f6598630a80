/**
 * Rows to TaskRecords (src/tasks/task.record.ts): timestamps take a fast path for UTC text and must give exactly
 * the instants MikroORM's own parser gives, for every form PostgreSQL prints (and the general parser otherwise).
 */
import { describe, expect, it } from 'vitest';
import { PostgreSqlPlatform } from '@mikro-orm/postgresql';
import { taskRecordMapper, type TaskRow } from '../../src/tasks/task.record.js';

const platform = new PostgreSqlPlatform();
const toRecord = taskRecordMapper(platform);

function row(timestamp: string): TaskRow {
  return {
    id: '6f1c9e1e-0000-4000-8000-000000000001', title: 't', description: null, type: 'FEATURE', priority: 'LOW', status: 'PENDING',
    assignee: null, created_by: 'ada', tags: [], metadata: {}, context: {}, progress: 0, result: null, error_message: null,
    retry_count: 0, estimated_minutes: null, actual_minutes: null, due_at: timestamp, started_at: null, completed_at: null,
    archived_at: null, created_at: timestamp, updated_at: timestamp, version: 1, parent_id: null,
  };
}

describe('taskRecordMapper', () => {
  it.each([
    '2025-11-23 08:00:00+00',
    '2025-11-23 08:00:00.1+00',
    '2025-11-23 08:00:00.12+00',
    '2025-11-23 08:00:00.123+00',
    '1970-01-01 00:00:00+00',
    '2025-11-23 10:00:00.5+02',
    '2025-11-23 02:30:00.25-05:30',
  ])('parses %s to the instant the ORM parses it to', (text) => {
    const record = toRecord(row(text));
    const expected = platform.parseDate(text).toISOString();
    expect(record.createdAt.toISOString()).toBe(expected);
    expect(record.dueAt?.toISOString()).toBe(expected);
    expect(record.startedAt).toBeNull();
  });

  it("keeps a value no Date can hold ('infinity') as the text PostgreSQL sent, for the scalar to refuse", () => {
    expect(toRecord(row('infinity')).dueAt).toBe('infinity');
  });

  it('keeps the parent as its id only', () => {
    expect(toRecord({ ...row('2025-11-23 08:00:00+00'), parent_id: 'abc' }).parent).toEqual({ id: 'abc' });
    expect(toRecord(row('2025-11-23 08:00:00+00')).parent).toBeNull();
  });
});
