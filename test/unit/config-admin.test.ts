// The admin settings as loaded: their own listener's defaults and the keys refused by path.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { adminPageOn, loadConfig } from '../../src/config/index.js';
import { configErrorOf, MINIMAL_CONFIG } from './config-helpers.js';

const TOKEN = 'a-real-admin-token-0123456789';
describe('admin configuration', () => {
  it('puts the admin listener on 127.0.0.1:9080 by default, apart from http (0.0.0.0:8080)', () => {
    const config = loadConfig({ text: `${MINIMAL_CONFIG}admin: { token: ${TOKEN} }\n` });
    assert.deepEqual([config.admin.host, config.admin.port], ['127.0.0.1', 9080]);
    assert.deepEqual([config.http.host, config.http.port], ['0.0.0.0', 8080]);
  });

  it("refuses http.port's port for the admin listener, by path, when it is used (a token is set)", () => {
    const same = configErrorOf(() =>
      loadConfig({ text: `${MINIMAL_CONFIG}http: { port: 8081 }\nadmin: { token: ${TOKEN}, port: 8081 }\n` }),
    );
    assert.equal(same.path, 'admin.port');
    assert.match(same.problem, /is http\.port's too \(8081\)/);
    // Without a token nothing listens there; two ephemeral ports are two ports.
    assert.doesNotThrow(() => loadConfig({ text: `${MINIMAL_CONFIG}http: { port: 8081 }\nadmin: { port: 8081 }\n` }));
    assert.doesNotThrow(() =>
      loadConfig({ text: `${MINIMAL_CONFIG}http: { port: 0 }\nadmin: { token: ${TOKEN}, port: 0 }\n` }),
    );
    // A token file left unread (a command that reads no secret files) turns the listener on all the same.
    const unread = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}http: { port: 8081 }\nadmin: { tokenFile: /nowhere/admin-token, port: 8081 }\n`,
        secretFiles: 'none',
      }),
    );
    assert.equal(unread.path, 'admin.port');
  });

  it('refuses the example token, however it is given, by path and without quoting it', () => {
    const example = 'change-me-local-admin-token';
    const dir = mkdtempSync(join(tmpdir(), 'config-admin-'));
    try {
      writeFileSync(join(dir, 'admin-token'), `${example}\n`);
      for (const [how, admin, env] of [
        ['inline', `{ token: ${example} }`, {}],
        ['from the environment', `{ token: "\${BRIDGE_ADMIN_TOKEN}" }`, { BRIDGE_ADMIN_TOKEN: example }],
        ['from a file', `{ tokenFile: ${join(dir, 'admin-token')} }`, {}],
        ['another placeholder', '{ token: ChangeMe-please-0123456789 }', {}],
      ] as const) {
        const refused = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}admin: ${admin}\n`, env }));
        assert.equal(refused.path, 'admin.token', how);
        assert.match(refused.problem, /is a placeholder .*openssl rand/, how);
        // examples/bridge.yaml reads the token from the environment: it is no longer where the placeholder is.
        assert.doesNotMatch(refused.problem, /examples\/bridge\.yaml/, how);
        assert.equal(
          /environment variable BRIDGE_ADMIN_TOKEN\)$/.test(refused.problem),
          how === 'from the environment',
          `${how}: the variable is named when the token came from it`,
        );
        assert.doesNotMatch(refused.message, /change-me-local|please-0123/i, `${how}: the value is not repeated`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a token shorter than 16 characters, the spaces around it not counted', () => {
    for (const token of ['"short-token"', '"   fifteen-chars-x   "']) {
      const refused = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}admin: { token: ${token} }\n` }));
      assert.equal(refused.path, 'admin.token', token);
      assert.match(refused.problem, /fewer than 16 characters|shorter than 16 characters/, token);
    }
    assert.equal(loadConfig({ text: `${MINIMAL_CONFIG}admin: { token: ${TOKEN} }\n` }).admin.token, TOKEN);
  });

  it('names BRIDGE_ADMIN_TOKEN when the token it gave is empty or short', () => {
    const text = `${MINIMAL_CONFIG}admin: { token: "\${BRIDGE_ADMIN_TOKEN}" }\n`;
    const empty = configErrorOf(() => loadConfig({ text, env: { BRIDGE_ADMIN_TOKEN: '' } }));
    assert.equal(empty.path, 'admin.token');
    assert.match(
      empty.problem,
      /\(it comes from the environment variable BRIDGE_ADMIN_TOKEN, which is set but empty\)$/,
    );
    const short = configErrorOf(() => loadConfig({ text, env: { BRIDGE_ADMIN_TOKEN: 'short-secret' } }));
    assert.equal(short.path, 'admin.token');
    assert.match(short.problem, /16 characters \(it comes from the environment variable BRIDGE_ADMIN_TOKEN\)$/);
    assert.doesNotMatch(short.message, /short-secret/, 'the value is not repeated');
  });

  it("leaves BRIDGE_ADMIN_TOKEN unread, short or not, for a command that does not use the admin page's token", () => {
    const text = `${MINIMAL_CONFIG}admin: { token: "\${BRIDGE_ADMIN_TOKEN}" }\n`;
    for (const secretFiles of ['outbound', 'sources', 'none'] as const) {
      const config = loadConfig({ text, env: { BRIDGE_ADMIN_TOKEN: 'x' }, secretFiles });
      assert.equal(config.admin.token, undefined, secretFiles);
      // Given all the same: the page serve would run is on.
      assert.equal(adminPageOn(config.admin), true, secretFiles);
    }
    assert.equal(configErrorOf(() => loadConfig({ text, env: { BRIDGE_ADMIN_TOKEN: 'x' } })).path, 'admin.token');
  });

  it('takes admin.allowedHosts as host names with a port or without, none by default', () => {
    assert.deepEqual(loadConfig({ text: `${MINIMAL_CONFIG}admin: { token: ${TOKEN} }\n` }).admin.allowedHosts, []);
    const hosts = ['admin.hospital.example', 'admin.hospital.example:8443', '10.8.0.5:9080', '[fd00::5]:9080'];
    const config = loadConfig({
      text: `${MINIMAL_CONFIG}admin: { token: ${TOKEN}, allowedHosts: ${JSON.stringify(hosts)} }\n`,
    });
    assert.deepEqual(config.admin.allowedHosts, hosts);
  });

  it('refuses an allowed host that is a URL, has a path or user, or a port past 65535, by path', () => {
    for (const host of ['https://admin.hospital.example', 'admin.hospital.example/admin', 'ops@admin.example', '']) {
      const refused = configErrorOf(() =>
        loadConfig({ text: `${MINIMAL_CONFIG}admin: { token: ${TOKEN}, allowedHosts: ["ok.example", "${host}"] }\n` }),
      );
      assert.equal(refused.path, 'admin.allowedHosts[1]', host);
      assert.match(refused.problem, /must be a host name or address, with a port or without .*no scheme, path or user/);
    }
    const port = configErrorOf(() =>
      loadConfig({ text: `${MINIMAL_CONFIG}admin: { token: ${TOKEN}, allowedHosts: ["a.example:70000"] }\n` }),
    );
    assert.equal(port.path, 'admin.allowedHosts[0]');
    assert.match(port.problem, /port 70000: a port is 1 to 65535/);
  });
});
