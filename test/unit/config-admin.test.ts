// The admin settings as loaded: their own listener's defaults and the keys refused by path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const TOKEN = 'a-real-admin-token-0123456789';
const base = `
opencrvs:
  domain: farajaland.example.org
  clientId: bridge
  clientSecret: s3cret
`;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

describe('admin configuration', () => {
  it('puts the admin listener on 127.0.0.1:9080 by default, apart from http (0.0.0.0:8080)', () => {
    const config = loadConfig({ text: `${base}admin: { token: ${TOKEN} }\n` });
    assert.deepEqual([config.admin.host, config.admin.port], ['127.0.0.1', 9080]);
    assert.deepEqual([config.http.host, config.http.port], ['0.0.0.0', 8080]);
  });

  it("refuses http.port's port for the admin listener, by path, when it is used (a token is set)", () => {
    const same = errorOf(() =>
      loadConfig({ text: `${base}http: { port: 8081 }\nadmin: { token: ${TOKEN}, port: 8081 }\n` }),
    );
    assert.equal(same.path, 'admin.port');
    assert.match(same.problem, /is http\.port's too \(8081\)/);
    // Without a token nothing listens there; two ephemeral ports are two ports.
    assert.doesNotThrow(() => loadConfig({ text: `${base}http: { port: 8081 }\nadmin: { port: 8081 }\n` }));
    assert.doesNotThrow(() => loadConfig({ text: `${base}http: { port: 0 }\nadmin: { token: ${TOKEN}, port: 0 }\n` }));
  });
});
