// Runs the opencrvs-bridge CLI as a separate process, the way an operator or a scheduler runs it.
// Always asynchronous: the simulators it talks to live in the test process, whose event loop must
// keep answering while the child runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { CHILD_NODE_FLAGS, childModule } from '../../support/child-source.js';

const CLI = childModule('cli.ts');

/**
 * src/cli.ts (compiled once for the run: test/support/child-source.ts) exports main() and has no entry guard:
 * a one-line module runs it in a fresh process. `cwd`: the
 * working directory it runs in (a cron job's), this process's by default.
 */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): ChildProcess {
  const entry = `import { main } from ${JSON.stringify(CLI)}; process.exitCode = await main(['node', 'opencrvs-bridge', ...JSON.parse(process.env.CLI_ARGS)]);`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'silent', ...env, CLI_ARGS: JSON.stringify(args) };
  delete childEnv.BRIDGE_CONFIG;
  return spawn(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', entry], {
    env: childEnv,
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output and waits (bounded) for it to exit; kills it when the time is up. */
export async function finished(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
  cwd?: string,
): Promise<CliResult> {
  return finished(spawnCli(args, env, cwd), timeoutMs);
}
