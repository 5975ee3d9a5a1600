import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { QueryBatch } from '../src/index.js';
import { useDashboardFixture } from './dashboard-fixture.js';

/**
 * The dashboard's pages in a real browser (Debian's chromium through playwright-core)
 * against MariaDB: the overview's counts, Respool from a failed file's page, the token,
 * read-only. SCREENSHOTS=1 also writes docs/dashboard-failed-file.png (the others:
 * test/console-browser.test.ts).
 */

const dash = useDashboardFixture('dashbrowser', { browser: true });
const { serve, page } = dash;

/** A home with datasources a and b: `pendingA` jobs pending on a, 2 on b, and one failed file on a (a duplicate key). */
async function setup(pendingA: number): Promise<{ qb: QueryBatch; failedName: string }> {
  const qb = await dash.setup();
  await qb.spool('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'one'], { datasource: 'a' });
  await qb.spool('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'again'], { datasource: 'a' });
  await qb.run();
  const failed = await qb.failed();
  expect(failed).toHaveLength(1);
  for (let i = 0; i < pendingA; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [10 + i], { datasource: 'a' });
  for (let i = 0; i < 2; i++) await qb.spool('INSERT INTO t (id) VALUES (?)', [100 + i], { datasource: 'b' });
  return { qb, failedName: failed[0]!.name };
}

const screenshots = process.env.SCREENSHOTS === '1';

describe('dashboard in a browser', () => {
  it('the overview shows pending and failed counts per datasource, and the last run', async () => {
    const { qb } = await setup(5);
    const server = await serve(qb);
    const p = await page();
    await p.goto(server.url);
    const a = p.locator('[data-ds="a"]');
    expect(await a.locator('[data-f="pending"]').textContent()).toBe('5');
    expect(await a.locator('[data-f="h0"]').textContent()).toBe('5');
    expect(await a.locator('[data-f="failed-failed"]').textContent()).toBe('1');
    expect(await p.locator('[data-ds="b"] [data-f="pending"]').textContent()).toBe('2');
    expect(await p.locator('[data-ds="b"] [data-f="failed-failed"]').textContent()).toBe('0');
    expect(await p.locator('#runs tbody tr').count()).toBe(1);
    expect(await p.locator('#runs tbody td').nth(1).textContent()).toBe('1');

    // The poller picks up a change without a reload.
    await qb.spool('INSERT INTO t (id) VALUES (?)', [500], { datasource: 'b' });
    await expect.poll(() => p.locator('[data-ds="b"] [data-f="pending"]').textContent(), { timeout: 8000, interval: 250 }).toBe('3');
  });

  it('Respool on a failed file moves it from failed/ back to the spool', async () => {
    const { qb, failedName } = await setup(0);
    const server = await serve(qb);
    const p = await page();
    await p.goto(`${server.url}failed?datasource=a`);
    await p.locator('#failed a', { hasText: failedName }).click();
    expect(await p.locator('#sql').textContent()).toBe('INSERT INTO t (id, v) VALUES (?, ?)');
    expect(await p.locator('#params').count()).toBe(0);
    await p.goto(`${server.url}failed/${failedName}?showParams=1`);
    expect(await p.locator('#params').textContent()).toContain('again');
    if (screenshots) await p.screenshot({ path: 'docs/dashboard-failed-file.png', fullPage: true });

    await p.getByRole('button', { name: 'Respool' }).click();
    await p.waitForURL(/\/failed\?done=respooled/);
    expect(await p.locator('.notice').textContent()).toContain(failedName);
    expect(await readdir(join(dash.home, 'failed'))).not.toContain(failedName);
    expect((await qb.status()).pending.a?.count).toBe(1);
    const id = failedName.replace(/^failed-|\.batchsql$/g, '');
    await p.goto(`${server.url}jobs/${id}`);
    expect(await p.locator('#job').textContent()).toContain('queued');
  });

  it('a POST without the CSRF token gets 403 and changes nothing', async () => {
    const { qb, failedName } = await setup(0);
    const server = await serve(qb);
    const res = await fetch(`${server.url}failed/${failedName}/delete`, { method: 'POST', body: new URLSearchParams({ csrf: 'x'.repeat(32) }) });
    expect(res.status).toBe(403);
    expect(await readdir(join(dash.home, 'failed'))).toContain(failedName);
  });

  it('the token is enforced: 401 without it, ?token= lets the browser in for later pages', async () => {
    const { qb } = await setup(1);
    const server = await serve(qb, { token: 'browser-tok' });
    const p = await page();
    expect((await p.goto(server.url))?.status()).toBe(401);
    expect((await p.goto(`${server.url}?token=browser-tok`))?.status()).toBe(200);
    expect(await p.locator('[data-ds="a"] [data-f="pending"]').textContent()).toBe('1');
    expect((await p.goto(`${server.url}failed`))?.status()).toBe(200);
  });

  it('read-only hides Respool and Delete and refuses their POSTs', async () => {
    const { qb, failedName } = await setup(0);
    const server = await serve(qb, { readOnly: true });
    const p = await page();
    await p.goto(`${server.url}failed/${failedName}`);
    expect(await p.locator('#sql').count()).toBe(1);
    expect(await p.getByRole('button', { name: 'Respool' }).count()).toBe(0);
    expect(await p.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    const res = await fetch(`${server.url}failed/${failedName}/respool`, { method: 'POST' });
    expect(res.status).toBe(403);
    expect(await readdir(join(dash.home, 'failed'))).toContain(failedName);
  });
});
