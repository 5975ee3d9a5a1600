import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the tests that need no database (pure parts, and the drain's
 * decisions against a fake driver). No global setup: they pass with no server reachable.
 */
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
  },
});
