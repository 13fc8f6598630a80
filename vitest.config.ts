import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import SkipReporter from './test/helpers/skip-reporter.js';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module) builds. Node, and so Apollo and the server under tsx, load the
    // CJS one; without this, Vite would give our sources the ESM one, and `instanceof GraphQLError` would differ
    // between our code and Apollo's only under test.
    alias: [
      { find: /^graphql$/, replacement: require.resolve('graphql') },
      // The client package from its source, as tsconfig.json's paths map it: tests need no build of packages/client.
      { find: /^@task-tracker\/client$/, replacement: fileURLToPath(new URL('./packages/client/src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // The skip reporter prints how many tests were skipped and fails a CI run with any (test/helpers/ci.ts). A
    // --reporter on the command line replaces both; CI runs plain `npm test`.
    reporters: ['default', new SkipReporter()],
    // Each file gets its own database; files run in parallel worker processes.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
