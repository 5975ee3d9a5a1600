import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useDashboardFixture } from './dashboard-fixture.js';

/**
 * The dashboard pages of issue 14 in a real browser (Debian's chromium through
 * playwright-core) against MariaDB: the bulk respool of a filter, Pause/Resume, the logs
 * page following the logs live, the 401 page. SCREENSHOTS=1 also writes
 * docs/dashboard-overview.png and docs/dashboard-failed.png.
 */

const dash = useDashboardFixture('console_browser', { browser: true });
const { serve, setup, page } = dash;

const screenshots = process.env.SCREENSHOTS === '1';

describe('dashboard pages of issue 14 in a browser', () => {
  it('"Respool all of this filter" moves back only the files the filter shows', async () => {
    const qb = await setup();
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    await qb.spool('INSERT INTO t (id) VALUES (1)', [], { datasource: 'a' });
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'a' });
    await qb.spool('INSERT INTO t (id) VALUES (2)', [], { datasource: 'b' });
    await qb.spool('INSERT INTO t (id) VALUES (2)', [], { datasource: 'b' });
    await qb.run();
    const failed = await qb.failed();
    expect(failed).toHaveLength(4);
    const server = await serve(qb);
    const p = await page();
    await p.goto(`${server.url}failed`);
    await p.selectOption('select[name="datasource"]', 'a');
    await p.fill('input[name="text"]', 'Duplicate');
    await p.getByRole('button', { name: 'Filter', exact: true }).click();
    await p.waitForURL(/datasource=a/);
    expect(await p.locator('#failed tbody tr').count()).toBe(2);
    await p.getByRole('button', { name: 'Respool all 2 of this filter' }).click();
    await p.waitForURL(/done=bulk/);
    expect(await p.locator('.notice').textContent()).toBe('Respooled 2 file(s) of the filter');
    const matching = failed.filter((f) => f.datasource === 'a' && f.lastError?.code === 'ER_DUP_ENTRY').map((f) => f.name);
    expect((await readdir(join(dash.home, 'failed'))).sort()).toEqual(failed.map((f) => f.name).filter((n) => !matching.includes(n)).sort());
    expect((await qb.status()).pending).toMatchObject({ a: { count: 2 } });
    expect(await p.locator('#failed tbody tr').textContent()).toContain('No failed file matches');
  });

  it('Pause and Resume on the overview pause the datasource and show it', async () => {
    const qb = await setup();
    const server = await serve(qb);
    const p = await page();
    await p.goto(server.url);
    const a = p.locator('[data-ds="a"]');
    expect(await a.locator('[data-f="paused"]').textContent()).toBe('active');
    await a.getByRole('button', { name: 'Pause' }).click();
    await p.waitForURL(/done=paused/);
    expect(await a.locator('[data-f="paused"]').textContent()).toBe('paused');
    expect((await qb.status()).paused).toEqual(['a']);
    expect(await a.getByRole('button', { name: 'Pause' }).isVisible()).toBe(false);
    await a.getByRole('button', { name: 'Resume' }).click();
    await p.waitForURL(/done=resumed/);
    expect((await qb.status()).paused).toEqual([]);
    expect(await a.locator('[data-f="paused"]').textContent()).toBe('active');
  });

  it('the logs page shows a new line without a reload', async () => {
    const qb = await setup();
    const server = await serve(qb);
    const p = await page();
    await p.goto(`${server.url}logs`);
    await expect.poll(() => p.locator('#live').textContent(), { timeout: 5000 }).toBe('following');
    expect(await p.locator('#log .line').count()).toBe(0);
    await p.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1));
    await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'a' });
    await qb.run();
    await expect.poll(() => p.locator('#log .line').count(), { timeout: 8000, interval: 200 }).toBe(2);
    expect(await p.locator('#log .line.error').textContent()).toContain('no_such_table');
    expect(await p.locator('#log .line.run').textContent()).toContain('runSQL: success=0; SQLFailed=1');
    // The same document: no reload happened.
    expect(await p.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1);
  });

  it('the overview with several runs charted, and the failed list (SCREENSHOTS=1 writes docs/dashboard-overview.png, docs/dashboard-failed.png)', async () => {
    const qb = await setup();
    let id = 0;
    for (let run = 0; run < 8; run++) {
      for (let i = 0; i < 3 + ((run * 5) % 7); i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [++id], { datasource: run % 2 === 0 ? 'a' : 'b' });
      if (run % 3 === 1) await qb.spool('INSERT INTO t (id) VALUES (?)', [id], { datasource: run % 2 === 0 ? 'a' : 'b' });
      if (run === 2 || run === 6) await qb.spool('INSERT INTO t (id) VALUES (?)', [id - 1], { datasource: 'a' });
      if (run === 5) await qb.spool('INSERT INTO no_such_table (id) VALUES (1)', [], { datasource: 'b' });
      await qb.run();
    }
    for (let i = 0; i < 12; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [1000 + i], { datasource: 'a' });
    for (let i = 0; i < 4; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [2000 + i], { datasource: 'b' });
    await qb.pause('b');
    const server = await serve(qb);
    const p = await page();
    await expect.poll(async () => {
      await p.goto(server.url);
      return p.locator('#chart g.run').count();
    }, { timeout: 5000 }).toBe(8);
    expect(await p.locator('[data-ds="b"] [data-f="paused"]').textContent()).toBe('paused');
    expect(await p.locator('[data-ds="a"] [data-f="pending"]').textContent()).toBe('12');
    if (screenshots) await p.screenshot({ path: 'docs/dashboard-overview.png', fullPage: true });
    await p.goto(`${server.url}failed?datasource=a`);
    // Runs 2, 4, 6 each failed one duplicate key on a.
    expect(await p.locator('#failed tbody tr').count()).toBe(3);
    expect(await p.locator('#bulk-respool').textContent()).toBe('Respool all 3 of this filter');
    if (screenshots) await p.screenshot({ path: 'docs/dashboard-failed.png', fullPage: true });
  });

  it('without the token a browser gets a page that says how to pass it', async () => {
    const qb = await setup();
    const server = await serve(qb, { token: 'br-tok' });
    const p = await page();
    expect((await p.goto(server.url))?.status()).toBe(401);
    expect(await p.locator('h1').textContent()).toBe('A token is needed');
    expect(await p.locator('main pre').textContent()).toBe('/?token=<token>');
  });
});
