import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests talk to a real MariaDB, spawn CLIs and stop/start things: give them room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts'],
    // .ci/run prints a plain "N passed, N failed" closing line from this file.
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
  },
});
