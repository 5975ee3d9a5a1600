import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import mysql from 'mysql2/promise';

/** The real MariaDB every machine runs. Override with QUERYBATCH_TEST_URL. */
export const ADMIN_URL = process.env.QUERYBATCH_TEST_URL ?? 'mysql://root@127.0.0.1:3306/test';

export const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

/** A port nothing listens on (for "database unreachable"). */
export const CLOSED_PORT_URL = 'mysql://root@127.0.0.1:1/test';

export interface TestDatabase {
  readonly name: string;
  /** URL of the database, for a datasource. */
  readonly url: string;
  /** A connection to it, for setting up tables and checking results. */
  readonly db: mysql.Connection;
  drop(): Promise<void>;
}

/** A fresh database of its own for a test file (dropped by drop()). */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `qbtest_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: ADMIN_URL });
  await admin.query(`CREATE DATABASE \`${name}\``);
  await admin.end();
  const url = ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const db = await mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z', dateStrings: false });
  return {
    name,
    url,
    db,
    async drop() {
      await db.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await db.end();
    },
  };
}

/** A new empty home directory. */
export async function tempHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'qb-home-'));
}

export async function removeHome(home: string): Promise<void> {
  await rm(home, { recursive: true, force: true });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI in a child process. */
export function runCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Every file below `dir` (any depth), as paths, except spool/.id (the spool's own name,
 * which stays). Directories are not listed.
 */
export async function filesBelow(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => !e.isDirectory() && !(e.name === '.id' && e.parentPath.endsWith('spool')))
    .map((e) => join(e.parentPath, e.name));
}
