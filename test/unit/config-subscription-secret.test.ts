// A subscription's secrets are compared by the bridge, as the admin token is, and refused by the same rules.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { configErrorOf, MINIMAL_CONFIG } from './config-helpers.js';

const source = (subscription: string) =>
  `${MINIMAL_CONFIG}sources:\n  - { id: emr, kind: fhir, baseUrl: "http://emr.example/fhir", subscription: ${subscription} }\n`;

describe('subscription secrets', () => {
  it('refuses a short or placeholder secret or hmacSecret, inline, from the environment or a file, by path and unquoted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-subscription-'));
    try {
      const weak = [
        'a',
        'password',
        'fifteen-chars-x',
        '   fifteen-chars-x   ',
        'change-me',
        'ChangeMe-please-0123456789',
      ];
      for (const key of ['secret', 'hmacSecret'] as const) {
        for (const value of weak) {
          writeFileSync(join(dir, 'hook'), `${value}\n`);
          for (const [how, subscription, env] of [
            ['inline', `{ ${key}: ${JSON.stringify(value)} }`, {}],
            ['from the environment', `{ ${key}: "\${HOOK_SECRET}" }`, { HOOK_SECRET: value }],
            ['from a file', `{ ${key}File: ${join(dir, 'hook')} }`, {}],
          ] as const) {
            const what = `${key} ${JSON.stringify(value)} ${how}`;
            const refused = configErrorOf(() => loadConfig({ text: source(subscription), env }));
            assert.equal(refused.path, `sources[0].subscription.${key}`, what);
            assert.match(refused.problem, /is a placeholder .*openssl rand|(fewer|shorter) than 16 characters/, what);
            assert.equal(
              /environment variable HOOK_SECRET\)$/.test(refused.problem),
              how === 'from the environment',
              `${what}: the variable is named when the secret came from it`,
            );
            // 'a' is in every message; the others are not.
            if (value.trim().length > 1) assert.ok(!refused.message.includes(value.trim()), `${what}: not repeated`);
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes a secret and hmacSecret of 16 characters or more', () => {
    const config = loadConfig({ text: source('{ secret: sixteen-chars-xy, hmacSecret: "a-medplum-signing-secret" }') });
    assert.deepEqual(config.sources[0]?.subscription, {
      secret: 'sixteen-chars-xy',
      hmacSecret: 'a-medplum-signing-secret',
    });
  });
});
