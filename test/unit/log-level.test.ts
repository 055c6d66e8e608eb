// LOG_LEVEL is read by one function for every command (serve, sync, replay, demo, sandbox): set, it
// overrides logging.level, in any case; empty or blank, it is unset (`LOG_LEVEL=` is how a shell or a
// compose file clears it), so the config's level, or the command's own default, applies.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { processLogger } from '../../src/commands/runtime.js';
import { configFromObject } from '../../src/config/index.js';

const config = configFromObject({
  opencrvs: { domain: 'farajaland.example.org', clientId: 'bridge', clientSecret: 's3cret' },
  logging: { level: 'error' },
});
const original = process.env.LOG_LEVEL;

describe('LOG_LEVEL', () => {
  afterEach(() => {
    if (original === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = original;
  });

  it('overrides logging.level when set, in any case', () => {
    process.env.LOG_LEVEL = 'DEBUG';
    assert.equal(processLogger(config).level, 'debug');
    assert.equal(processLogger(undefined, { defaultLevel: 'warn' }).level, 'debug');
  });

  it('empty or blank is unset: the config level, else the command default, else info', () => {
    for (const empty of ['', '  ']) {
      process.env.LOG_LEVEL = empty;
      assert.equal(processLogger(config).level, 'error', `LOG_LEVEL=${JSON.stringify(empty)}, a config`);
      assert.equal(processLogger(config, { toStderr: true }).level, 'error');
      assert.equal(processLogger(undefined, { defaultLevel: 'warn' }).level, 'warn', 'the demo');
      assert.equal(processLogger().level, 'info', 'the sandbox');
    }
    delete process.env.LOG_LEVEL;
    assert.equal(processLogger(undefined, { defaultLevel: 'warn' }).level, 'warn');
  });
});
