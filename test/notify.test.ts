import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, readdir, rename, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { QueryBatch, isQueryBatchError, verifySignature, type DeliveryFailure, type Outcome, type RunSummary, type WebhookPayload } from '../src/index.js';
import { OutcomeLog } from '../src/ops/outcomes.js';
import { newId } from '../src/spool/id.js';
import { removeHome, runCli, tempHome, useTestDatabase, waitFor } from './helpers.js';

const t = useTestDatabase('notify', 'CREATE TABLE n (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))');
let home: string;
let q: QueryBatch | undefined;

const SECRET = 'test-secret';

interface Received {
  readonly path: string;
  readonly body: string;
  readonly payload: WebhookPayload;
  readonly signature: string | undefined;
}

/** A real HTTP server on loopback. `answer` decides each response; by default 204. */
async function webhookServer(answer: (req: IncomingMessage, res: ServerResponse, n: number) => void = (_q, res) => res.writeHead(204).end()) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body, payload: JSON.parse(body) as WebhookPayload, signature: req.headers['x-querybatch-signature'] as string | undefined });
      answer(req, res, received.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
});

describe('status(id)', () => {
  it('moves from queued (with its position) to running to succeeded or failed, for real ids', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const first = await q.spool('INSERT INTO n (v) VALUES (?), (?)', ['a', 'b']);
    const sleeper = await q.spool('SELECT SLEEP(1.5)');
    const bad = await q.spool('INSERT INTO no_such_table VALUES (1)');

    expect(await q.status(first)).toEqual({ id: first, state: 'queued', datasource: 'main', position: 1, attempts: 0, priority: 'normal' });
    expect(await q.status(bad)).toMatchObject({ state: 'queued', position: 3 });

    const started = Date.now();
    const running = q.run();
    const seen = await waitFor(async () => {
      const s = await q!.status(sleeper);
      return s.state === 'running' ? s : undefined;
    });
    expect(seen).toMatchObject({ id: sleeper, state: 'running', datasource: 'main', runner: q.runnerName });
    expect(seen).not.toHaveProperty('runnerDead');
    await running;

    const done = await q.status(first);
    expect(done).toMatchObject({ id: first, state: 'succeeded', datasource: 'main', affectedRows: 2 });
    if (done.state !== 'succeeded') throw new Error('unreachable');
    expect(Date.parse(done.finishedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(done.durationMs).toBeGreaterThan(0);
    const slept = await q.status(sleeper);
    // Its group (refused by the bad job) went again under savepoints: each job's durationMs is its share of the group's time.
    expect(slept.state === 'succeeded' && slept.durationMs).toBeGreaterThan(0);
    // claimedAt: when this run claimed it, before its statement ran (the sleeper's 1.5 s lie between).
    if (slept.state !== 'succeeded' || slept.claimedAt === undefined) throw new Error(`Expected a claimedAt; got ${JSON.stringify(slept)}`);
    expect(Date.parse(slept.claimedAt)).toBeGreaterThanOrEqual(started);
    expect(Date.parse(slept.finishedAt) - Date.parse(slept.claimedAt)).toBeGreaterThanOrEqual(1400);

    const failed = await q.status(bad);
    expect(failed).toMatchObject({
      id: bad, state: 'failed', datasource: 'main', class: 'sql', code: 'ER_NO_SUCH_TABLE', file: `failed-${bad}.batchsql`, attempts: 1, claimedAt: expect.any(String),
    });
    if (failed.state !== 'failed' || failed.claimedAt === undefined) throw new Error('unreachable');
    // Claimed with its group (before the sleeper ran), finished after it.
    expect(Date.parse(failed.claimedAt)).toBeGreaterThanOrEqual(started);
    expect(Date.parse(failed.claimedAt)).toBeLessThanOrEqual(Date.parse(failed.finishedAt!));
  });


  it('status(id) says a job claimed by a runner that died is not running, and the next run gives it back and runs it', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const id = await q.spool('INSERT INTO n (v) VALUES (?)', ['orphan']);
    const dead = `${hostname()}.999999.1`;
    const claims = join(home, 'spool', '.active', dead, 'main');
    await mkdir(claims, { recursive: true });
    await rename(join(home, 'spool', 'main', id.slice(0, 6), id.slice(6, 8) + id[10]!, `${id}.batchsql`), join(claims, `${id}.batchsql`));
    expect(await q.status(id)).toEqual({ id, state: 'running', datasource: 'main', runner: dead, runnerDead: true });
    const cli = await runCli(['--home', home, 'status', id], { env: { QUERYBATCH_DATASOURCE_MAIN: t.url } });
    expect(cli.stdout).toContain(`${id}: claimed on main by runner ${dead}, which has died: not running; the next run gives it back to its place in the spool`);
    expect(await q.run()).toMatchObject({ recovered: 1, success: 1 });
    expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
  });
  it('answers unknown for ids never spooled and once retention has passed (backdated), and refuses a non-id', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, retentionMs: 24 * 3600_000 });
    const id = await q.spool('INSERT INTO n (v) VALUES (?)', ['kept']);
    await q.run();
    expect((await q.status(id)).state).toBe('succeeded');
    expect(await q.status(newId())).toEqual({ id: expect.any(String), state: 'unknown' });
    await expect(q.status('../../etc/passwd')).rejects.toSatisfy((e) => isQueryBatchError(e, 'INVALID_ID'));

    // Backdate the record by 25 hours: the outcome is forgotten.
    const dir = join(home, 'logs', 'outcomes');
    const [file] = await readdir(dir);
    const path = join(dir, file!);
    const old = new Date(Date.now() - 25 * 3600_000);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace(/"finishedAt":"[^"]+"/g, `"finishedAt":"${old.toISOString()}"`));
    expect(await q.status(id)).toEqual({ id, state: 'unknown' });

    // And a file not written for longer than retention is removed by pruning.
    await utimes(path, old, old);
    expect(await new OutcomeLog(dir, 24 * 3600_000).prune()).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });

  it('querybatch status ID --json in a spawned process: queued, then succeeded; exit 2 for a non-id', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    const spooled = await runCli(['--home', home, 'spool', "INSERT INTO n (v) VALUES ('cli')"]);
    const id = spooled.stdout.trim();
    const queued = await runCli(['--home', home, 'status', id, '--json']);
    expect(queued.code).toBe(0);
    expect(JSON.parse(queued.stdout)).toMatchObject({ id, state: 'queued', position: 1 });
    expect((await runCli(['--home', home, 'run'])).code).toBe(0);
    const done = await runCli(['--home', home, 'status', id]);
    expect(done.stdout).toMatch(new RegExp(`^${id}: succeeded on main at \\S+ in [\\d.]+ms, 1 row\\(s\\) affected`));
    const refused = await runCli(['--home', home, 'status', 'nope']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Expected a job id');
  });
});

describe('events', () => {
  it('emits run:start, succeeded and failed per job, and run:end with the summary', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const ok = [await q.spool('INSERT INTO n (v) VALUES (?)', ['e1']), await q.spool('INSERT INTO n (v) VALUES (?)', ['e2'])];
    const bad = await q.spool('INSERT INTO n (nope) VALUES (1)');
    const seen: string[] = [];
    const succeeded: Outcome[] = [];
    const failed: Outcome[] = [];
    let ended: RunSummary | undefined;
    q.on('run:start', () => seen.push('run:start'));
    q.on('succeeded', (o) => {
      seen.push('succeeded');
      succeeded.push(o);
    });
    q.on('failed', (o) => {
      seen.push('failed');
      failed.push(o);
    });
    q.on('run:end', (s) => {
      seen.push('run:end');
      ended = s;
    });
    const summary = await q.run();
    expect(seen).toEqual(['run:start', 'succeeded', 'succeeded', 'failed', 'run:end']);
    expect(succeeded.map((o) => o.id)).toEqual(ok);
    expect(succeeded[0]).toMatchObject({ status: 'succeeded', datasource: 'main', affectedRows: 1 });
    expect(failed).toEqual([expect.objectContaining({ id: bad, status: 'failed', class: 'sql', code: 'ER_BAD_FIELD_ERROR', file: `failed-${bad}.batchsql` })]);
    expect(ended).toBe(summary);
  });

  it('a listener that throws does not stop the run', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('INSERT INTO n (v) VALUES (?)', ['x1']);
    await q.spool('INSERT INTO n (v) VALUES (?)', ['x2']);
    q.on('succeeded', () => {
      throw new Error('listener bug');
    });
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0 });
  });
});

describe('webhooks', () => {
  it('POSTs each outcome once, signed, to the datasource webhook or the job\'s own', async () => {
    home = await tempHome();
    const server = await webhookServer();
    try {
      q = new QueryBatch({
        home, configFile: false,
        datasources: { main: { url: t.url, webhook: `${server.url}/ds` } },
        webhooks: { secret: SECRET },
      });
      const good = await q.spool('INSERT INTO n (v) VALUES (?)', ['w1']);
      const own = await q.spool('INSERT INTO n (v) VALUES (?)', ['w2'], { webhook: `${server.url}/own` });
      const bad = await q.spool('INSERT INTO no_such_table VALUES (1)');
      await q.run();
      await q.webhooksIdle();

      expect(server.received).toHaveLength(3);
      const byId = new Map(server.received.map((r) => [r.payload.id, r]));
      expect(byId.get(good)).toMatchObject({ path: '/ds', payload: { event: 'succeeded', status: 'succeeded', datasource: 'main', affectedRows: 1 } });
      expect(byId.get(own)?.path).toBe('/own');
      expect(byId.get(bad)).toMatchObject({ path: '/ds', payload: { event: 'failed', class: 'sql', code: 'ER_NO_SUCH_TABLE', file: `failed-${bad}.batchsql` } });
      for (const r of server.received) {
        expect(verifySignature(SECRET, r.body, r.signature)).toBe(true);
        expect(verifySignature('another secret', r.body, r.signature)).toBe(false);
        expect(verifySignature(SECRET, r.body.replace('"main"', '"evil"'), r.signature)).toBe(false);
      }
    } finally {
      await server.close();
    }
  });

  it('retries a failing endpoint the configured number of times, then reports it', async () => {
    home = await tempHome();
    const server = await webhookServer((_req, res) => res.writeHead(503).end());
    try {
      q = new QueryBatch({
        home, configFile: false,
        datasources: { main: { url: t.url, webhook: `${server.url}/down` } },
        webhooks: { secret: SECRET, maxAttempts: 3, backoffMs: 20 },
      });
      const id = await q.spool('INSERT INTO n (v) VALUES (?)', ['r1']);
      const closed = await webhookServer();
      await closed.close(); // a port that was just listening and now refuses
      const refusedId = await q.spool('INSERT INTO n (v) VALUES (?)', ['r2'], { webhook: `${closed.url}/hook` });
      const gaveUp: DeliveryFailure[] = [];
      q.on('webhook:failed', (f) => gaveUp.push(f));
      await q.run();
      await q.webhooksIdle();
      expect(server.received.map((r) => r.payload.id)).toEqual([id, id, id]);
      expect(gaveUp).toHaveLength(2);
      expect(gaveUp.find((f) => f.id === id)).toMatchObject({ attempts: 3, error: 'HTTP 503' });
      expect(gaveUp.find((f) => f.id === refusedId)).toMatchObject({ attempts: 3, error: 'ECONNREFUSED' });
    } finally {
      await server.close();
    }
  });

  it('never holds up the drain: the run ends while every delivery is still unanswered', async () => {
    home = await tempHome();
    const held: ServerResponse[] = [];
    const server = await webhookServer((_req, res) => held.push(res));
    try {
      q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, webhook: server.url } }, webhooks: { concurrency: 2 } });
      for (let i = 0; i < 200; i++) await q.spool('INSERT INTO n (v) VALUES (?)', [`h${i}`]);
      const summary = await q.run();
      expect(summary.success).toBe(200);
      // Not one delivery had its answer when the run ended; at most `concurrency` were even sent.
      expect(held.length).toBeLessThanOrEqual(2);
      const idle = q.webhooksIdle();
      const answerAll = setInterval(() => held.splice(0).forEach((res) => res.writeHead(200).end()), 5);
      await idle;
      clearInterval(answerAll);
      expect(new Set(server.received.map((r) => r.payload.id)).size).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('refuses a webhook that is not an http(s) URL, in the config and in spool()', async () => {
    home = await tempHome();
    expect(() => new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, webhook: 'file:///etc/passwd' } } }))
      .toThrow(/Expected datasource "main" webhook to be an http:\/\/ or https:\/\/ URL; got "file:\/\/\/etc\/passwd"/);
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await expect(q.spool('DO 1', [], { webhook: 'not a url' })).rejects.toSatisfy((e) => isQueryBatchError(e, 'INVALID_WEBHOOK_URL'));
    expect(await readdir(join(home, 'spool', '.tmp'))).toEqual([]);
  });
});
