// Configurations that work but are rarely what the operator meant get one warning at construction.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-warnings-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function warningsFor(subscription: Record<string, unknown>, name: string): Promise<string[]> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
  const config = configFromObject({
    // Never contacted: the bridge is constructed, not started.
    opencrvs: { domain: 'opencrvs.example.org', clientId: 'c', clientSecret: 'not-a-real-secret' },
    store: { path: join(dir, `${name}.db`) },
    sources: [{ id: 'emr', kind: 'fhir', baseUrl: 'http://127.0.0.1:9/fhir', subscription }],
    routing: { defaultOffice: 'LHUYvwY2Aq1' },
  });
  const bridge = new Bridge(config, { logger, schedule: false, http: false, worker: false });
  await bridge.stop();
  return lines.map((line) => String(JSON.parse(line).msg));
}

describe('construction warnings', () => {
  it('warns once when a subscription accepts notifications without any secret', async () => {
    const open = await warningsFor({}, 'open');
    assert.equal(open.filter((msg) => msg.startsWith('subscription without secret or hmacSecret')).length, 1);
    const bearer = await warningsFor({ secret: 'shared-bearer-secret' }, 'bearer');
    const hmac = await warningsFor({ hmacSecret: 'shared-hmac-secret' }, 'hmac');
    assert.deepEqual(
      [...bearer, ...hmac].filter((msg) => msg.startsWith('subscription without')),
      [],
    );
  });
});
