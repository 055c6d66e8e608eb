import { spawnSync } from 'node:child_process';
import { CHILD_NODE_FLAGS, childModule } from '../../support/child-source.js';

const cli = childModule('cli.ts');

/**
 * Runs `opencrvs-bridge <args>` from source in a fresh process and waits (src/cli.ts exports main() and
 * has no entry guard: a one-line module runs it). Blocking: only for tests with no server in-process;
 * those use the asynchronous helpers in bridge-cli.ts.
 */
export function runCliSync(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const entry = `import { main } from ${JSON.stringify(cli)}; process.exitCode = await main(['node', 'opencrvs-bridge', ...JSON.parse(process.env.CLI_ARGS)]);`;
  const env: NodeJS.ProcessEnv = { ...process.env, CLI_ARGS: JSON.stringify(args), LOG_LEVEL: 'silent' };
  delete env.BRIDGE_CONFIG;
  const r = spawnSync(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', entry], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
