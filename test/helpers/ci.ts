/**
 * CI's rule: a test that skips itself did not run, so in CI nothing may skip. A test that needs a tool this machine
 * may lack (Chromium, PgBouncer, PostgreSQL's server binaries) asks {@link skipWithout}: on a developer's machine it
 * skips, naming why; in CI its file fails, naming why. Any other skip fails a CI run in the skip reporter
 * (test/helpers/skip-reporter.ts).
 */

/**
 * True when `CI` is set to anything but `false` (as `.ci/run` and CI services set it), the same reading as
 * vitest's own (std-env), so vitest's CI behaviour (no `.only`) and ours switch together.
 */
export const IN_CI: boolean = Boolean(process.env.CI) && process.env.CI !== 'false';

/**
 * Whether tests that need a tool should be skipped here, for `describe.skipIf` / `it.skipIf`.
 *
 * @param missing why the tests cannot run on this machine, or undefined when they can
 * @returns false when nothing is missing; true when something is and this is not CI (the caller's title says why)
 * @throws in CI when something is missing: the test file fails at collection with the reason instead of skipping
 */
export function skipWithout(missing: string | undefined): boolean {
  if (missing === undefined) return false;
  if (IN_CI) throw new Error(`CI is set, so these tests may not skip, but they cannot run: ${missing}`);
  return true;
}
