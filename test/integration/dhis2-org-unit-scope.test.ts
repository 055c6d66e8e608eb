// An org unit of sources[].dhis2.orgUnits that DHIS2 refuses: one outside the search scope of the source's
// user (2.41+: 403 "Organisation unit is not part of the search scope: <uid>", for the whole list), or one
// DHIS2 does not have (400 "Organisation unit does not exist: <uid>"). The poll fails naming the org unit
// and the key, with DHIS2's own words; the 403 is no refused credential, so the source's secret is not
// re-read for it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_SANDBOX_AUTH, ORG_UNITS } from '../../src/sandbox/dhis2/index.js';
import { rotateSecretFile } from '../support/secret-file.js';
import { BIRTHS_SOURCE, startDhis2Harness } from './helpers/dhis2-harness.js';
import { dhis2Error, startFaultProxy } from './helpers/fault-proxy.js';

const OUTSIDE = ORG_UNITS.gbenikoroMchp;

describe('DHIS2: an org unit of sources[].dhis2.orgUnits that DHIS2 refuses to the poll', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dhis2-ou-scope-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('outside the search scope: the poll names the org unit and the scope to grant, and keeps the credentials', async () => {
    const tokenFile = join(dir, 'pat');
    writeFileSync(tokenFile, `${DEFAULT_SANDBOX_AUTH.pat}\n`);
    const h = await startDhis2Harness({
      births: 2,
      deaths: 0,
      writeBack: false,
      configure: ({ sources }) => {
        sources[0] = {
          ...sources[0],
          auth: { type: 'pat', tokenFile },
          dhis2: {
            ...(sources[0]?.dhis2 as object),
            orgUnits: [ORG_UNITS.ngelehunChc, OUTSIDE],
            orgUnitMode: 'SELECTED',
          },
        };
      },
    });
    try {
      // The user searches in Bo only: Gbenikoro MCHP is outside it.
      h.dhis2.restrictUser({ organisationUnits: [ORG_UNITS.bo] });
      // A rotation the bridge has not looked at yet (the file is read again after a refused credential, or
      // within 30 s): were the 403 taken for refused credentials, the next call would send this token.
      rotateSecretFile(tokenFile, 'not-the-token-DHIS2-knows');
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 10_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      const status = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE);
      assert.equal(
        status?.lastError,
        `list tracked entities failed: HTTP 403 (DHIS2: org unit ${OUTSIDE} of sources[].dhis2.orgUnits of source ${BIRTHS_SOURCE} is not in the search scope of the user of sources[].auth: in DHIS2, give that user ${OUTSIDE}, or an org unit above it, as a search org unit, or remove it from sources[].dhis2.orgUnits; run doctor)`,
      );
      // Granted in DHIS2: the next pass polls with the credentials it had, not the unread rotation.
      h.dhis2.restrictUser(undefined);
      const next = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 10_000 });
      assert.deepEqual(
        next.failedSources,
        [],
        h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE)?.lastError,
      );
    } finally {
      await h.close();
    }
  });

  it("one DHIS2 does not have: the poll quotes DHIS2's message naming it", async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      writeBack: false,
      configure: ({ sources }) => {
        sources[0] = {
          ...sources[0],
          dhis2: {
            ...(sources[0]?.dhis2 as object),
            orgUnits: [ORG_UNITS.sierraLeone, 'NoSuchOu01A'],
            orgUnitMode: 'DESCENDANTS',
          },
        };
      },
    });
    try {
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 10_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      assert.equal(
        h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE)?.lastError,
        `list tracked entities failed: HTTP 400: DHIS2 said "Organisation unit does not exist: NoSuchOu01A" (check sources[].dhis2 of source ${BIRTHS_SOURCE}: program, orgUnits; run doctor)`,
      );
    } finally {
      await h.close();
    }
  });

  it("DHIS2's message is quoted scrubbed of the source's secrets, on one line, and cut when long", async () => {
    const proxy = await startFaultProxy();
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      writeBack: false,
      configure: ({ sources }) => {
        sources[0] = { ...sources[0], baseUrl: proxy.url };
      },
    });
    try {
      proxy.target = h.dhis2.baseUrl;
      // A server that echoes the request's Authorization header, over several lines, at length.
      proxy.rules.push((req) =>
        req.url?.startsWith('/api/tracker/trackedEntities')
          ? dhis2Error(400, `Bad query\nfrom ${req.headers.authorization} ${'x'.repeat(5_000)}`)
          : undefined,
      );
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 10_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      const said = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE)?.lastError ?? '';
      assert.match(said, /^list tracked entities failed: HTTP 400: DHIS2 said "Bad query from /);
      assert.ok(!said.includes(DEFAULT_SANDBOX_AUTH.pat), said);
      assert.ok(!said.includes('\n'), said);
      assert.ok(said.length < 500, `bounded: ${said.length} characters`);
      assert.match(said, /…" \(check sources\[\]\.dhis2 of source dhis2-births: program, orgUnits; run doctor\)$/);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
