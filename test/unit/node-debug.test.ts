// Which NODE_DEBUG values keep a command that calls out from starting: matched as Node matches them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leakingNodeDebugModules, NODE_DEBUG_OPT_OUT, nodeDebugVerdict } from '../../src/observability/node-debug.js';

describe('leakingNodeDebugModules', () => {
  it("names the modules Node's pattern turns on: any case, lists, `*` wildcards", () => {
    assert.deepEqual(leakingNodeDebugModules('fetch'), ['fetch']);
    assert.deepEqual(leakingNodeDebugModules('FETCH'), ['fetch']);
    assert.deepEqual(leakingNodeDebugModules('worker,undici'), ['undici']);
    assert.deepEqual(leakingNodeDebugModules('ht*'), ['http', 'https', 'http2']);
    assert.deepEqual(leakingNodeDebugModules('*'), ['fetch', 'undici', 'http', 'https', 'http2', 'net', 'tls']);
  });

  it('names none for other modules, a name Node would not match, or nothing set', () => {
    for (const value of [undefined, '', 'module', 'worker,timer', 'fetchx', 'fetch ', 'http.', 'n?t'])
      assert.deepEqual(leakingNodeDebugModules(value), [], String(value));
  });
});

describe('nodeDebugVerdict', () => {
  it('refuses in one line naming the variable and the command; the opt-out turns it into a warning', () => {
    const verdict = nodeDebugVerdict('serve', { NODE_DEBUG: 'net,tls' });
    assert.ok(verdict && 'refusal' in verdict);
    assert.match(verdict.refusal, /^serve: refusing to start: NODE_DEBUG=net,tls makes Node print net, tls debug/);
    assert.doesNotMatch(verdict.refusal, /\n/);
    const allowed = nodeDebugVerdict('serve', { NODE_DEBUG: 'net', [NODE_DEBUG_OPT_OUT]: '1' });
    assert.ok(allowed && 'warning' in allowed);
    // Only `1` opts out: `0` or `false` must not read as yes.
    for (const value of ['0', 'false', '']) {
      const refused = nodeDebugVerdict('serve', { NODE_DEBUG: 'net', [NODE_DEBUG_OPT_OUT]: value });
      assert.ok(refused && 'refusal' in refused, value);
    }
    assert.equal(nodeDebugVerdict('serve', { NODE_DEBUG: 'module' }), undefined);
  });
});
