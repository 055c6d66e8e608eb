// A `sync` pass stopped (SIGTERM from a scheduler) while it waits to ask OpenCRVS for the routing table again:
// the pass ends with the stop, not when its wait would have ended (1 s, 2 s, 4 s… up to half its --timeout).
// The wait's timer also kept the process alive after the stop had handed everything back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-sync-stop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('Bridge.syncOnce stopped', () => {
  it('ends while waiting to ask for the routing table again, not when the wait would end', {
    timeout: 30_000,
  }, async () => {
    const lines: string[] = [];
    const config = configFromObject({
      // Nothing listens on port 9: every lookup is refused at once, a retryable failure tried again.
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
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    const bridge = new Bridge(config, { logger, schedule: false, http: false });
    let stopped = false;
    try {
      const pass = bridge.syncOnce(undefined, { timeoutMs: 120_000 });
      const settled = pass.then(
        () => Date.now(),
        () => Date.now(),
      );
      // The lookup failed three times: the pass now waits 4 s before the fourth.
      const waitingMs = 4000;
      for (;;) {
        const retry = lines.map((line) => JSON.parse(line)).find((entry) => entry.retryInMs >= waitingMs);
        if (retry) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const stopAt = Date.now();
      await bridge.stop();
      stopped = true;
      const endedAt = await settled;
      assert.ok(endedAt - stopAt < waitingMs / 2, `the pass ended ${endedAt - stopAt} ms after the stop`);
    } finally {
      if (!stopped) await bridge.stop();
    }
  });
});
