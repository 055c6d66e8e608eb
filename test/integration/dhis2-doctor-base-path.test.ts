// DHIS2 is there, its API is not at the configured path: doctor said only "answered HTTP 404", and the
// operator was left to guess that sources[].baseUrl is the server's root (a versioned …/api/41 is called
// as …/api/41/api/system/info). Against the DHIS2 simulator, which answers an unknown API path with
// DHIS2's own 404 WebMessage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { checkDhis2Source } from '../../src/doctor/source-checks.js';
import {
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  startDhis2Simulator,
} from '../../src/sandbox/dhis2/index.js';

describe('doctor: a DHIS2 baseUrl at the wrong path', () => {
  let dhis2: Dhis2Simulator;
  before(async () => {
    dhis2 = await startDhis2Simulator({ port: 0 });
  });
  after(async () => {
    await dhis2?.close();
  });

  const settings = (baseUrl: string) =>
    ({
      id: 'hmis',
      kind: 'dhis2',
      baseUrl,
      auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
      timeoutMs: 5000,
      dhis2: { program: CHILD_PROGRAMME },
    }) as unknown as SourceSettings;

  it('says what baseUrl is when DHIS2 answers its own 404 for /api/system/info, naming the key', async () => {
    const results = await checkDhis2Source(settings(`${dhis2.baseUrl}/api/41`), [], 0);
    assert.equal(results.length, 1, JSON.stringify(results));
    assert.equal(results[0]?.status, 'fail');
    assert.match(
      results[0]?.detail ?? '',
      /answered HTTP 404; check the base path of sources\[0\]\.baseUrl: the DHIS2 server's root, with or without \/api, not a versioned \/api\/41/,
    );
  });

  it('passes the same server given by its root', async () => {
    const results = await checkDhis2Source(settings(dhis2.baseUrl), [], 0);
    assert.equal(results[0]?.status, 'ok', JSON.stringify(results[0]));
  });
});
