/**
 * The status machine of docs/API.md ("Status machine") and the field changes each transition carries with it.
 */
import { AppError } from '../errors.js';
import type { TaskStatus } from './task.entity.js';
import type { Task } from './task.entity.js';

/** Allowed targets from each status. Anything else is INVALID_TRANSITION. */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  PENDING: ['IN_PROGRESS', 'BLOCKED', 'CANCELLED'],
  IN_PROGRESS: ['REVIEW', 'COMPLETED', 'FAILED', 'BLOCKED', 'CANCELLED', 'PENDING'],
  REVIEW: ['COMPLETED', 'IN_PROGRESS', 'FAILED', 'CANCELLED'],
  BLOCKED: ['PENDING', 'IN_PROGRESS', 'CANCELLED'],
  FAILED: ['PENDING', 'CANCELLED'],
  COMPLETED: ['PENDING'],
  CANCELLED: ['PENDING'],
};

/** Statuses that end a task's work: entering one sets `completedAt`, leaving one clears it. */
const FINISHED: ReadonlySet<TaskStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** The targets a task may move to now: IN_PROGRESS is left out while it is blocked by a dependency. */
export function availableTransitions(from: TaskStatus, blocked: boolean): TaskStatus[] {
  return TRANSITIONS[from].filter((to) => !(blocked && to === 'IN_PROGRESS'));
}

/**
 * Refuses a move the machine does not allow, naming what is allowed from `from` (a move to the status the task
 * already has included: `allowed` still lists where it can go).
 */
export function assertTransition(from: TaskStatus, to: TaskStatus): void {
  if (!TRANSITIONS[from].includes(to)) {
    const allowed = [...TRANSITIONS[from]];
    const refused = from === to ? `The task is already ${to}` : `A ${from} task cannot move to ${to}`;
    throw new AppError('INVALID_TRANSITION', `${refused}; allowed: ${allowed.join(', ')}`, { from, to, allowed });
  }
}

export interface TransitionDetails {
  result?: string | null;
  errorMessage?: string | null;
}

/**
 * Applies the move `task.status -> to` and its side effects on the task's fields (timestamps, progress,
 * actualMinutes, retryCount, result, errorMessage). The caller has checked the move and the blockers.
 */
export function applyTransition(task: Task, to: TaskStatus, now: Date, details: TransitionDetails = {}): void {
  const from = task.status;
  task.status = to;
  if (to === 'IN_PROGRESS' && !task.startedAt) task.startedAt = now;
  if (FINISHED.has(from) && !FINISHED.has(to)) task.completedAt = null;
  if (FINISHED.has(to)) task.completedAt = now;
  if (from === 'FAILED' && to === 'PENDING') task.retryCount += 1;
  if (to === 'COMPLETED') {
    task.progress = 1;
    task.actualMinutes = task.startedAt ? Math.round((now.getTime() - task.startedAt.getTime()) / 60_000) : 0;
  }
  if (details.result !== undefined && details.result !== null) task.result = details.result;
  if (details.errorMessage !== undefined && details.errorMessage !== null) task.errorMessage = details.errorMessage;
}
