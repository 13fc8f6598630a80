/**
 * `task-tracker`: a command line for a task-tracker server, built on the typed client.
 *
 *   task-tracker tasks list [--status S,..] [--priority P,..] [--assignee A] [--tag T] [--search Q] [--first N] [--after C]
 *   task-tracker tasks show ID
 *   task-tracker tasks create --title T [--description D] [--priority P] [--type T] [--assignee A] [--tag T ...] [--due ISO] [--parent ID]
 *   task-tracker tasks start|complete|fail ID [--result R] [--error E]
 *   task-tracker tasks stats
 *   task-tracker webhooks list [--first N] [--after C]
 *   task-tracker webhooks show|enable|disable|rotate-secret|delete ID
 *   task-tracker webhooks create --target URL [--kind K,..] [--task ID] [--assignee A] [--tag T ...] [--description D]
 *   task-tracker webhooks update ID [--target URL] [--kind K,..|all] [--task ID] [--assignee A] [--tag T ...] [--no-filter] [--description D]
 *   task-tracker webhooks deliveries ID [--status S] [--first N] [--after C]
 *   task-tracker webhooks redeliver ID EVENT_ID
 *
 * The webhooks commands are in cli-webhooks.ts; `--target` names the webhook's URL because `--url` is the server's.
 * Options: --url (TASK_TRACKER_URL, default http://localhost:4000/graphql), --token (TASK_TRACKER_TOKEN), --json.
 * Exit codes: 0 done, 1 server unavailable or failed, 2 usage error, 3 not found, 4 refused (invalid input, a
 * transition the status machine forbids, a conflict), 5 not authenticated or not allowed.
 */
import { parseArgs } from 'node:util';
import {
  CompleteTaskDocument,
  CreateTaskDocument,
  FailTaskDocument,
  ListTasksDocument,
  ShowTaskDocument,
  StartTaskDocument,
  TaskStatisticsDocument,
  TaskTrackerError,
  createClient,
  type TaskFilter,
  type TaskPriority,
  type TaskStatus,
  type TaskType,
} from '@task-tracker/client';
import { maskSecrets } from '../src/secrets.js';
import { printDetail, printTable } from './cli-output.js';
import { WEBHOOKS_USAGE, WEBHOOK_OPTIONS, runWebhooks } from './cli-webhooks.js';

const TASKS_USAGE = `usage: task-tracker tasks <list|show|create|start|complete|fail|stats> [options]
  list    [--status S,..] [--priority P,..] [--assignee A] [--tag T] [--search Q] [--first N] [--after CURSOR]
  show    ID
  create  --title T [--description D] [--priority P] [--type T] [--assignee A] [--tag T]... [--due ISO] [--parent ID]
  start   ID
  complete ID [--result R]
  fail    ID [--error MESSAGE]
  stats`;
const OPTIONS = 'options: --url URL (or TASK_TRACKER_URL)  --token JWT (or TASK_TRACKER_TOKEN)  --json';
const USAGE = `${TASKS_USAGE}\n${WEBHOOKS_USAGE}\n${OPTIONS}`;

class UsageError extends Error {}

const EXIT: Record<string, number> = {
  NOT_FOUND: 3,
  BAD_USER_INPUT: 4,
  INVALID_TRANSITION: 4,
  BLOCKED_BY_DEPENDENCY: 4,
  VERSION_CONFLICT: 4,
  CYCLE_DETECTED: 4,
  QUERY_TOO_COMPLEX: 4,
  GRAPHQL_VALIDATION_FAILED: 4,
  UNAUTHENTICATED: 5,
  FORBIDDEN: 5,
};

const list = (value: string | undefined) => value?.split(',').map((v) => v.trim().toUpperCase()).filter(Boolean);

async function run(argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      status: { type: 'string' },
      priority: { type: 'string' },
      type: { type: 'string' },
      assignee: { type: 'string' },
      tag: { type: 'string', multiple: true },
      search: { type: 'string' },
      first: { type: 'string' },
      after: { type: 'string' },
      title: { type: 'string' },
      description: { type: 'string' },
      due: { type: 'string' },
      parent: { type: 'string' },
      result: { type: 'string' },
      error: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      ...WEBHOOK_OPTIONS,
    },
  });
  const [group, command, id] = positionals;
  if (group === 'webhooks' && (values.help || !command)) throw new UsageError(`${WEBHOOKS_USAGE}\n${OPTIONS}`);
  if (group === 'tasks' && (values.help || !command)) throw new UsageError(`${TASKS_USAGE}\n${OPTIONS}`);
  if ((group !== 'tasks' && group !== 'webhooks') || !command) throw new UsageError(USAGE);
  const client = createClient({ url: values.url ?? env.TASK_TRACKER_URL ?? 'http://localhost:4000/graphql', token: values.token ?? env.TASK_TRACKER_TOKEN });
  const show = (value: unknown, human: () => void) => (values.json ? out(JSON.stringify(value, null, 2)) : human());
  if (group === 'webhooks') return runWebhooks(command, positionals.slice(2), values, { client, out, show, usage: (message) => new UsageError(message) });
  const needId = () => {
    if (!id) throw new UsageError(`task-tracker tasks ${command} needs a task ID`);
    return id;
  };

  switch (command) {
    case 'list': {
      const filter: TaskFilter = {
        ...(values.status ? { status: list(values.status) as TaskStatus[] } : {}),
        ...(values.priority ? { priority: list(values.priority) as TaskPriority[] } : {}),
        ...(values.type ? { type: list(values.type) as TaskType[] } : {}),
        ...(values.assignee ? { assignee: [values.assignee] } : {}),
        ...(values.tag ? { tagsAny: values.tag } : {}),
        ...(values.search ? { search: values.search } : {}),
      };
      const first = values.first === undefined ? 20 : Number(values.first);
      if (!Number.isInteger(first)) throw new UsageError('--first takes a whole number');
      const { tasks } = await client.request(ListTasksDocument, { filter, first, after: values.after ?? null });
      show(tasks, () => {
        printTable(out, tasks.nodes, ['id', 'title', 'status', 'priority', 'assignee', 'dueAt']);
        out(`${tasks.nodes.length} of ${tasks.totalCount}${tasks.pageInfo.hasNextPage ? `; next page: --after ${tasks.pageInfo.endCursor}` : ''}`);
      });
      return 0;
    }
    case 'show': {
      const { task } = await client.request(ShowTaskDocument, { id: needId() });
      if (!task) throw new TaskTrackerError(`Task ${id} does not exist`, 'NOT_FOUND');
      show(task, () => printDetail(out, task));
      return 0;
    }
    case 'create': {
      if (!values.title) throw new UsageError('task-tracker tasks create needs --title');
      const { createTask } = await client.request(CreateTaskDocument, {
        input: {
          title: values.title,
          description: values.description ?? null,
          ...(values.priority ? { priority: values.priority.toUpperCase() as TaskPriority } : {}),
          ...(values.type ? { type: values.type.toUpperCase() as TaskType } : {}),
          assignee: values.assignee ?? null,
          tags: values.tag ?? [],
          dueAt: values.due ?? null,
          parentId: values.parent ?? null,
        },
      });
      show(createTask, () => printDetail(out, createTask));
      return 0;
    }
    case 'start':
    case 'complete':
    case 'fail': {
      const taskId = needId();
      const task =
        command === 'start'
          ? (await client.request(StartTaskDocument, { id: taskId })).startTask
          : command === 'complete'
            ? (await client.request(CompleteTaskDocument, { id: taskId, result: values.result ?? null })).completeTask
            : (await client.request(FailTaskDocument, { id: taskId, errorMessage: values.error ?? null })).failTask;
      show(task, () => out(`${task.id} is now ${task.status} (version ${task.version})`));
      return 0;
    }
    case 'stats': {
      const { taskStatistics: s } = await client.request(TaskStatisticsDocument, {});
      show(s, () => {
        out(`total ${s.total}, overdue ${s.overdue}, blocked ${s.blocked}`);
        printTable(out, s.byStatus, ['status', 'count']);
        printTable(out, s.byPriority, ['priority', 'count']);
        printTable(out, s.byAssignee.map((a) => ({ assignee: a.assignee ?? '(unassigned)', count: a.count })), ['assignee', 'count']);
      });
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n${TASKS_USAGE}\n${OPTIONS}`);
  }
}

/** Runs the command line; returns the exit code. Errors go to stderr as one line (or JSON with --json). */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const json = argv.includes('--json');
  try {
    return await run(argv, env, out);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`${(err as Error).message}\n`);
      return 2;
    }
    if (err instanceof TaskTrackerError) {
      // The client masks its URL's password and its token already; any other URL a message quotes is masked here.
      const message = maskSecrets(err.message);
      process.stderr.write(json ? `${JSON.stringify({ error: { code: err.code, message, ...err.extensions } })}\n` : `error: ${message} (${err.code})\n`);
      return EXIT[err.code] ?? 1;
    }
    process.stderr.write(`error: ${maskSecrets((err as Error).message)}\n`);
    return 1;
  }
}
