/**
 * A vitest reporter, next to the default one (vitest.config.ts): at the end of every run it prints how many tests
 * were skipped and lists them, and in CI (test/helpers/ci.ts) it fails the run if any were: a skipped test is a
 * test that did not run, and a green CI run must not hide one.
 */
import type { Reporter, TestCase, TestModule, TestRunEndReason, TestSpecification, Vitest } from 'vitest/node';
import { IN_CI } from './ci.js';

/** Counts and lists the skipped tests of a run; in CI, fails the run when there are any. */
export default class SkipReporter implements Reporter {
  private vitest: Vitest | undefined;
  /** The run was narrowed by a test-name, line or tag filter, which skips the tests left out on purpose. */
  private filtered = false;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>): void {
    this.filtered =
      this.vitest?.config.testNamePattern !== undefined ||
      specifications.some((s) => s.testNamePattern !== undefined || Boolean(s.testLines?.length || s.testIds?.length || s.testTagsFilter?.length));
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, _errors: unknown, reason: TestRunEndReason): void {
    // An interrupted run (Ctrl-C) leaves tests unrun that were never skipped.
    if (reason === 'interrupted') return;
    const skipped: TestCase[] = [];
    for (const testModule of testModules) {
      for (const test of testModule.children.allTests()) if (test.result().state === 'skipped') skipped.push(test);
    }
    const log = (line: string) => (this.vitest ? this.vitest.logger.log(line) : console.log(line));
    log('');
    log(`${skipped.length} ${skipped.length === 1 ? 'test' : 'tests'} skipped`);
    for (const test of skipped) log(`  - ${describeSkip(test)}`);
    if (skipped.length === 0 || !IN_CI) return;
    if (this.filtered) {
      log('  (not a failure: a test-name, line or tag filter skipped them)');
      return;
    }
    const message = `CI is set and ${skipped.length} ${skipped.length === 1 ? 'test was' : 'tests were'} skipped: in CI every test must run, so this run fails`;
    if (this.vitest) this.vitest.logger.error(message);
    else console.error(message);
    // How vitest itself fails a run (it sets process.exitCode = 1 just before calling onTestRunEnd): the CLI exits
    // with process.exitCode, nothing resets it, and the Reporter API has no return value to fail the run with.
    process.exitCode = 1;
  }
}

/** `file > suite > test` with how it was skipped (`todo`, or the note of `ctx.skip(note)`). */
function describeSkip(test: TestCase): string {
  const result = test.result();
  const note = result.state === 'skipped' ? result.note : undefined;
  const how = [test.options.mode === 'todo' ? 'todo' : undefined, note].filter(Boolean).join(': ');
  return `${test.module.relativeModuleId} > ${test.fullName}${how ? ` (${how})` : ''}`;
}
