import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI, waitFor } from './helpers.js';

export { waitFor };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Daemon {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every stdout line so far (the CLI runs with --json: one JSON event per line). */
  readonly events: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  waitForEvent(match: (e: Record<string, unknown>) => boolean, timeoutMs: number, what?: string): Promise<Record<string, unknown>>;
  /** SIGTERM, then the exit code (SIGKILL after 15 s so a test never leaves it behind). */
  stop(): Promise<number | null>;
}

/** Spawns `querybatch --home HOME start --json ARGS...` and waits for its "started" event. */
export async function startDaemon(home: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const child = spawn(process.execPath, [CLI, '--home', home, 'start', '--json', ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const events: Array<Record<string, unknown>> = [];
  let stderr = '';
  let rest = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const daemon: Daemon = {
    child,
    events,
    stderr: () => stderr,
    exited,
    waitForEvent: (match, timeoutMs, what = 'an event') => waitFor(() => {
      if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}) while waiting for ${what}: ${stderr}`);
      return events.find(match);
    }, timeoutMs, what),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  await daemon.waitForEvent((e) => e.event === 'started', 15_000, 'the started event');
  return daemon;
}
