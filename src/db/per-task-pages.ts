/**
 * One page of rows per task for a whole batch of tasks, in one statement (a window function numbers each task's
 * rows), mapped to entities on the operation's fork: the events and executions of a page of tasks.
 */
import DataLoader from 'dataloader';
import type { EntityClass, EntityDictionary } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AppError } from '../errors.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../pagination.js';
import { query } from './sql.js';

/** Arguments of a per-task connection (`Task.events`, `Task.executions`). */
export interface TaskPageArgs {
  first?: number | null;
  after?: string | null;
}

/** A table of rows that belong to a task (`task_id`), and the keys its pages are ordered by. */
export interface PerTaskSpec<T> {
  table: string;
  entity: EntityClass<T>;
  /** Order keys, oldest first; the cursor holds their values. */
  keys: Array<{ column: string; cast: string; of: (row: T) => string }>;
}

/**
 * One page of rows per task for a whole batch of tasks, in one statement: a window function numbers each task's
 * rows, and the first `first + 1` of each are kept.
 */
export function perTaskLoader<T extends object>(em: EntityManager, spec: PerTaskSpec<T>, args: TaskPageArgs): DataLoader<string, Page<T>> {
  const limit = pageSize(args.first);
  const after = args.after != null ? decodeCursor(args.after, spec.keys.length, 'after') : undefined;
  if (after?.some((v) => typeof v !== 'string' || v.length > 64)) throw AppError.badInput('after is not a cursor of this listing', 'after');
  const order = spec.keys.map((k) => `x.${k.column}`).join(', ');
  const position = after
    ? {
        text: ` and (${spec.keys.map((k) => `x.${k.column}`).join(', ')}) > (${spec.keys.map((k) => `?::${k.cast}`).join(', ')})`,
        params: after,
      }
    : { text: '', params: [] };
  const counts = new DataLoader<string, number>(async (ids) => {
    const rows = await query<{ task_id: string; n: string }>(em, {
      text: `select task_id, count(*) as n from ${spec.table} where task_id = any(?) group by task_id`,
      params: [[...ids]],
    });
    const byId = new Map(rows.map((r) => [r.task_id, Number(r.n)]));
    return ids.map((id) => byId.get(id) ?? 0);
  });
  return new DataLoader<string, Page<T>>(async (ids) => {
    const rows =
      limit === 0
        ? []
        : await query(em, {
            text: `select * from (
                     select x.*, row_number() over (partition by x.task_id order by ${order}) as rn
                       from ${spec.table} x where x.task_id = any(?)${position.text}
                   ) p where p.rn <= ? order by p.task_id, p.rn`,
            params: [[...ids], ...position.params, limit + 1],
          });
    const byTask = new Map<string, T[]>();
    for (const row of rows) {
      const { rn: _rn, ...columns } = row;
      const list = byTask.get(String(row.task_id)) ?? [];
      list.push(em.map(spec.entity, columns as EntityDictionary<T>));
      byTask.set(String(row.task_id), list);
    }
    return ids.map((id) => {
      const all = byTask.get(id) ?? [];
      const page = all.slice(0, limit);
      return {
        rows: page,
        cursor: (i) => (i >= 0 && i < page.length ? encodeCursor(spec.keys.map((k) => k.of(page[i] as T))) : null),
        hasNextPage: all.length > limit,
        hasPreviousPage: after !== undefined,
        totalCount: () => counts.load(id),
      };
    });
  });
}

