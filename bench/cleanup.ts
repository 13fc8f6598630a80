/**
 * What the harness must undo however it ends (servers, the bench database, the embedded PostgreSQL): run in
 * reverse order on success, on failure, and on Ctrl-C, once.
 */
export class Cleanup {
  private readonly steps: Array<() => Promise<unknown>> = [];
  private running: Promise<void> | undefined;

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        await step().catch((err: unknown) => process.stderr.write(`cleanup step failed: ${err instanceof Error ? err.message : String(err)}\n`));
      }
    })();
    return this.running;
  }
}
