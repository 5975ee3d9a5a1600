import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** This package; its dist/ is what `npm run build` made (as for the CLI tests). */
const REPO = join(import.meta.dirname, '..');

/** Runs `code` with `node -e` in a fresh project whose node_modules/querybatch is this package (the built dist/). */
async function runInConsumer(code: string, inputType: 'commonjs' | 'module'): Promise<{ stdout: string; stderr: string }> {
  const project = await mkdtemp(join(tmpdir(), 'qb-consumer-'));
  try {
    await mkdir(join(project, 'node_modules'));
    await symlink(REPO, join(project, 'node_modules', 'querybatch'), 'dir');
    return await promisify(execFile)(process.execPath, [`--input-type=${inputType}`, '-e', code], { cwd: project });
  } finally {
    await rm(project, { recursive: true, force: true });
  }
}

describe('the package as a dependency', () => {
  it("loads with require('querybatch') (the ESM build, through Node's require of ES modules)", async () => {
    const { stdout } = await runInConsumer("const { QueryBatch, isQueryBatchError } = require('querybatch'); console.log(QueryBatch.name, typeof isQueryBatchError);", 'commonjs');
    expect(stdout).toBe('QueryBatch function\n'); // stderr may carry Node 20's ExperimentalWarning
  });

  it("loads with import from 'querybatch', the same classes as require's", async () => {
    const code = "import { QueryBatch } from 'querybatch'; import { createRequire } from 'node:module'; " +
      "const required = createRequire(process.cwd() + '/')('querybatch'); console.log(QueryBatch.name, required.QueryBatch === QueryBatch);";
    const { stdout } = await runInConsumer(code, 'module');
    expect(stdout).toBe('QueryBatch true\n');
  });

  it('runs its bin from the packed tarball (dist/cli.js, a bundle): --help, init, spool, status, run', async () => {
    // `npm pack` (its scripts skipped: dist/ is built, and other tests use it), unpacked where npm
    // would install it, node_modules/querybatch/ of a project; the dependencies come from a
    // node_modules/ further up (a link to this repository's), as hoisted ones would.
    const dir = await mkdtemp(join(tmpdir(), 'qb-packed-'));
    try {
      const { stdout: packed } = await promisify(execFile)('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO });
      const [{ filename }] = JSON.parse(packed) as [{ filename: string }];
      const installed = join(dir, 'project', 'node_modules', 'querybatch');
      await mkdir(installed, { recursive: true });
      await promisify(execFile)('tar', ['-xzf', join(dir, filename), '-C', installed, '--strip-components=1']);
      await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');
      const { bin } = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { bin: Record<string, string> };
      // As npm links it: node_modules/.bin/querybatch, executable, run through its #! line.
      const link = join(dir, 'project', 'node_modules', '.bin', 'querybatch');
      await mkdir(join(link, '..'));
      await symlink(join('..', 'querybatch', bin.querybatch!), link);
      await chmod(join(installed, bin.querybatch!), 0o755);
      const home = join(dir, 'home');
      const cli = (...args: string[]) => promisify(execFile)(link, ['--home', home, ...args], { cwd: dir });
      expect((await cli('--help')).stdout).toContain('querybatch [--home DIR]');
      expect((await cli('--version')).stdout).toBe(`${(JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version}\n`);
      await cli('init');
      await cli('spool', 'CREATE TABLE packed (a INTEGER)');
      await cli('spool', 'INSERT INTO packed (a) VALUES (1)');
      expect(JSON.parse((await cli('status', '--json')).stdout)).toMatchObject({ pendingTotal: 2 });
      expect(JSON.parse((await cli('run', '--json')).stdout)).toMatchObject({ success: 2, sqlFailed: 0 });
      const unknown = await cli('stauts').then(() => null, (error: { code: number; stderr: string }) => error);
      expect(unknown?.code).toBe(2);
      expect(unknown?.stderr).toBe('querybatch: Did you mean status?\nRun "querybatch --help" for usage.\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
