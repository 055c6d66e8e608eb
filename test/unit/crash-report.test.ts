// What escapes every handler is reported scrubbed, and the process still ends with 1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { errorLine } from '../../src/observability/crash.js';
import { CHILD_NODE_FLAGS, childModule } from '../support/child-source.js';

const CRASH = childModule('observability/crash.ts');

/** Runs `body` in a fresh process with the crash handlers installed. */
function crashWith(body: string) {
  const entry = `import { installCrashHandlers } from ${JSON.stringify(CRASH)}; installCrashHandlers(); ${body}`;
  return spawnSync(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', entry], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('crash report', () => {
  for (const [what, body] of [
    ['an uncaught exception', 'setTimeout(() => { throw new Error(MESSAGE); }, 1);'],
    ['an unhandled rejection', 'Promise.reject(new Error(MESSAGE));'],
  ]) {
    it(`${what}: one scrubbed line and the frames on stderr, exit 1`, () => {
      const message =
        'GET https://emr.example/fhir/Patient?family=Nakamura&_count=5 failed: Authorization: Bearer s3cr3t-T0ken';
      const r = crashWith(`const MESSAGE = ${JSON.stringify(message)}; ${body}`);
      assert.equal(r.status, 1, r.stderr);
      assert.match(
        r.stderr,
        /^opencrvs-bridge: unexpected error: Error: GET https:\/\/emr\.example\/fhir\/Patient\?family=/,
      );
      assert.match(r.stderr, /\n\s+at /, 'the frames say where');
      assert.doesNotMatch(r.stderr, /Nakamura|s3cr3t-T0ken/);
    });
  }

  it('a command that failed prints its error scrubbed too (sync, demo, sandbox, subscriptions)', () => {
    const line = errorLine(new Error('token endpoint https://auth.example/token?client_secret=hunter22 refused'));
    assert.equal(line, 'token endpoint https://auth.example/token?client_secret=[redacted] refused');
    assert.equal(errorLine('Bearer abc.def'), 'Bearer [redacted]');
  });
});
