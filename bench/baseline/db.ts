/**
 * The baseline's database access: a `pg.Pool` and a per-request view of it that counts statements (BEGIN and
 * COMMIT included: each is a round trip), so the report can put the baseline's SQL per operation beside ours.
 */
import type pg from 'pg';

/** A GraphQL response body as the baseline builds it (serialized with `JSON.stringify`, like Apollo does). */
export interface GraphQLBody {
  data?: unknown;
  errors?: Array<{ message: string; extensions: { code: string } }>;
}

/** A deliberate error of an operation, answered like Apollo answers one: status 200, `errors` and `data: null`. */
export class OperationError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** One request's access to the database. */
export class RequestDb {
  /** Statements sent for this request so far. */
  statements = 0;

  constructor(private readonly pool: pg.Pool) {}

  /** One statement on any pooled connection (autocommit). */
  async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    this.statements++;
    return (await this.pool.query<R>(text, values)).rows;
  }

  /** Runs `work` between BEGIN and COMMIT on one connection; ROLLBACK on any error. */
  async transaction<T>(work: (q: <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]>) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const q = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> => {
      this.statements++;
      return (await client.query<R>(text, values)).rows;
    };
    try {
      await q('begin');
      const result = await work(q);
      await q('commit');
      return result;
    } catch (err) {
      await q('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

/** A handler of one operation: its variables in, the response body out. */
export type Handler = (db: RequestDb, variables: Record<string, unknown>) => Promise<GraphQLBody>;

/** `DateTime` as the real server emits it: ISO-8601 in UTC with milliseconds. */
export const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** A cursor exactly as the server makes it: base64url of `[orderSignature, ...orderKeyValues]`. */
export function encodeCursor(signature: string, values: Array<string | null>): string {
  return Buffer.from(JSON.stringify([signature, ...values])).toString('base64url');
}

/** The key values of a cursor made for `signature`; BAD_USER_INPUT for anything else. */
export function decodeCursor(cursor: string, signature: string, keys: number): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (!strings(parsed) || parsed[0] !== signature || parsed.length !== keys + 1) {
    throw new OperationError('BAD_USER_INPUT', 'after is not a cursor of this listing');
  }
  return parsed.slice(1);
}
