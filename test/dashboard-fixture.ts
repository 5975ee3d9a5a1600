import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { QueryBatch, type DashboardHandle } from '../src/index.js';
import { launchChromium } from './browser.js';
import { removeHome, useTestDatabase, tempHome, type TestDatabase } from './helpers.js';

/**
 * What the dashboard's test files share: a MariaDB test database with a table
 * `t (id, v)`, a fresh home per test whose datasources `a` and `b` both point at it, the
 * dashboard served on a free port, and (with `browser`) a chromium page per test. Whatever
 * a test opens is closed after it, in reverse order; then the home is removed and `t`
 * emptied.
 */
export interface DashboardFixture {
  readonly t: TestDatabase;
  /** The current test's home (set by setup()). */
  readonly home: string;
  /** A QueryBatch on a new home: `{ datasources: { a, b }, durability: 'none' }` with `config` over it. */
  readonly setup: (config?: Record<string, unknown>) => Promise<QueryBatch>;
  /** The dashboard of `qb` on a free port, with the metrics cache off. */
  readonly serve: (qb: QueryBatch, options?: Parameters<QueryBatch['serveDashboard']>[0]) => Promise<DashboardHandle>;
  /** A new page in its own browser context (only with `browser: true`). */
  readonly page: () => Promise<Page>;
  /** Closes something after the current test. */
  readonly defer: (cleanup: () => Promise<unknown>) => void;
}

export function useDashboardFixture(label: string, options: { browser?: boolean } = {}): DashboardFixture {
  const t = useTestDatabase(label, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
  const cleanups: Array<() => Promise<unknown>> = [];
  let home = '';
  let browser: Browser | undefined;

  if (options.browser === true) {
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
    });
  }
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    if (home !== '') await removeHome(home);
    await t.db.query('DELETE FROM t');
  });

  return {
    t,
    get home() {
      return home;
    },
    setup: async (config = {}) => {
      home = await tempHome();
      await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { a: t.url, b: t.url }, durability: 'none', ...config }));
      const qb = new QueryBatch({ home });
      cleanups.push(() => qb.close());
      return qb;
    },
    serve: async (qb, serveOptions = {}) => {
      const server = await qb.serveDashboard({ port: 0, metricsCacheMs: 0, ...serveOptions });
      cleanups.push(() => server.close());
      return server;
    },
    page: async () => {
      if (browser === undefined) throw new Error('Expected useDashboardFixture(…, { browser: true }) for page()');
      const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
      cleanups.push(() => context.close());
      return context.newPage();
    },
    defer: (cleanup) => {
      cleanups.push(cleanup);
    },
  };
}
