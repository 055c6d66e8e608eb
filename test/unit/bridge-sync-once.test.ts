// Bridge.syncOnce bounds its own timeoutMs: the CLI's --timeout is checked, but any caller reaches the
// pass's deadline timer, which Node fires after 1 ms when set past 2^31 - 1 ms.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-sync-once-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('Bridge.syncOnce', () => {
  // Bounded: before the check, a pass with an overflowing deadline ran (cut off at once) instead of failing.
  it('refuses a timeoutMs no timer can hold, naming the maximum, before the pass starts', {
    timeout: 20_000,
  }, async () => {
    const config = configFromObject({
      // Nothing listens on port 9: a pass that started would find both unreachable.
      opencrvs: {
        tokenUrl: 'http://127.0.0.1:9/auth/token',
        eventsUrl: 'http://127.0.0.1:9/events',
        clientId: 'c',
        clientSecret: 'not-a-real-secret',
      },
      store: { path: join(dir, 'ledger.db') },
      sources: [{ id: 'emr', kind: 'fhir', baseUrl: 'http://127.0.0.1:9/fhir' }],
      routing: { defaultOffice: 'LHUYvwY2Aq1' },
    });
    const bridge = new Bridge(config, { logger: createLogger({ level: 'silent' }), schedule: false, http: false });
    try {
      for (const timeoutMs of [2 ** 31, 1e12, Number.POSITIVE_INFINITY, Number.NaN, 0, -1]) {
        await assert.rejects(
          bridge.syncOnce(undefined, { timeoutMs }),
          (err: unknown) =>
            err instanceof RangeError && /timeoutMs must be above 0 and at most 2147483647 ms/.test(err.message),
          `timeoutMs ${timeoutMs}`,
        );
      }
    } finally {
      await bridge.stop();
    }
  });
});
