/**
 * Each benchmarked operation as an autocannon request sequence. Bodies vary per request through `setupRequest`
 * (a shared counter per run); M2 is a two-step sequence on one connection (start a fresh task, then complete
 * that same task), and the mix is a fixed 10-step sequence of 8 reads and 2 writes.
 */
import type autocannon from 'autocannon';
import type { OpName } from './options.js';
import { MIX_SEQUENCE, OUR_DIALECT, type Dialect, type ReadFixtures, type ReadName } from './operations.js';

export interface Fixtures extends ReadFixtures {
  /** The next never-used PENDING task for M2; undefined once the pool is exhausted. */
  nextPoolTask(): string | undefined;
}

export const DESCRIPTIONS: Record<OpName, string> = {
  Q1: 'task(id): 17 scalar fields of one task, ids spread over the table',
  Q2: 'tasks(first: 50) HIGH/CRITICAL in some statuses, by PRIORITY DESC, with parent, dependencies, isBlocked',
  Q3: 'tasks(first: 20) of one assignee, newest first, with totalCount',
  Q4: 'tasks(first: 50, after: cursor of row 5,000), default order',
  M1: 'createTask (LOW priority, 2 tags)',
  M2: 'startTask then completeTask of a fresh PENDING task (each request counted)',
  MIX: '80/20 mix: Q1 x4, Q2 x2, Q3, Q4, M1 x2 per 10 requests',
};

const HEADERS = { 'content-type': 'application/json' };

/** A POST whose body is made fresh for every send. */
function dynamic(makeBody: (context: autocannon.Context) => string | undefined): autocannon.Request {
  return {
    method: 'POST',
    path: '/graphql',
    headers: HEADERS,
    setupRequest: (request, context) => {
      const text = makeBody(context);
      // Out of M2 tasks: send a harmless read instead, flagged so the run is reported invalid, not crashed.
      return { ...request, body: text ?? '{"operationName":"PoolExhausted","query":"{ __typename }"}' };
    },
  };
}

/**
 * The request sequence of `op` in `dialect` (our schema's by default); `counter` numbers the requests of this run.
 *
 * @throws Error for M2 in a dialect without startTask/completeTask (the harness does not run it there).
 */
export function requestsFor(op: OpName, f: Fixtures, counter: { n: number }, dialect: Dialect = OUR_DIALECT): autocannon.Request[] {
  const read = (name: ReadName) => dynamic(() => dialect.readBody(name, f, counter.n++));
  switch (op) {
    case 'Q1':
    case 'Q2':
    case 'Q3':
    case 'Q4':
      return [read(op)];
    case 'M1':
      return [dynamic(() => dialect.m1Body(counter.n++))];
    case 'M2': {
      const transitions = dialect.transitions;
      if (!transitions) throw new Error('M2 needs startTask and completeTask, which this server does not have');
      return [
        dynamic((context) => {
          const id = f.nextPoolTask();
          context.id = id;
          return id === undefined ? undefined : transitions.start(id);
        }),
        dynamic((context) => (typeof context.id === 'string' ? transitions.complete(context.id) : undefined)),
      ];
    }
    case 'MIX':
      return MIX_SEQUENCE.map((name) => (name === 'M1' ? dynamic(() => dialect.m1Body(counter.n++)) : read(name)));
  }
}
