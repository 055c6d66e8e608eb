// An org unit of sources[].dhis2.orgUnits that DHIS2 refuses: one outside the search scope of the source's
// user (2.41+: 403 "Organisation unit is not part of the search scope: <uid>", for the whole list), or one
// DHIS2 does not have (400 "Organisation unit does not exist: <uid>"). The poll fails naming the org unit
// and the key, with DHIS2's own words; the 403 is no refused credential, so the source's secret is not
// re-read for it. doctor looks each org unit up, and the user's scopes, before any poll.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatReport, runDoctor } from '../../src/doctor/index.js';
import {
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  ORG_UNITS,
  startDhis2Simulator,
} from '../../src/sandbox/dhis2/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { rotateSecretFile } from '../support/secret-file.js';
import { BIRTHS_SOURCE, DHIS2_ROUTING, startDhis2Harness } from './helpers/dhis2-harness.js';
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

describe("doctor: each of sources[].dhis2.orgUnits against DHIS2 and the user's scopes", () => {
  let dhis2: Dhis2Simulator;
  let opencrvs: OpenCrvsSimulator;
  const dir = mkdtempSync(join(tmpdir(), 'doctor-ou-'));
  let files = 0;
  before(async () => {
    dhis2 = await startDhis2Simulator({ port: 0 });
    opencrvs = await startOpenCrvsSimulator({ port: 0 });
  });
  after(async () => {
    await Promise.all([dhis2?.close(), opencrvs?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** doctor's `org units` line for one DHIS2 source with these org units (and a write-back, if asked). */
  async function orgUnitsLine(orgUnits: string[], writeBack = false) {
    const source = {
      id: 'hmis',
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
      dhis2: { program: 'IpHINAT79UW', orgUnits, orgUnitMode: 'DESCENDANTS' },
      ...(writeBack ? { writeBack: { dataElement: 'uf3svrmp8Oj', programStage: 'A03MvHHogjR' } } : {}),
    };
    const config = {
      opencrvs: {
        tokenUrl: opencrvs.tokenUrl,
        eventsUrl: opencrvs.eventsUrl,
        clientId: opencrvs.clientId,
        clientSecret: opencrvs.clientSecret,
      },
      store: { path: join(dir, 'bridge.db') },
      sources: [source],
      routing: DHIS2_ROUTING,
    };
    files += 1;
    const file = join(dir, `bridge-${files}.yaml`);
    writeFileSync(file, JSON.stringify(config));
    const report = await runDoctor({ file, env: {} });
    const line = report.checks.find((c) => c.name === 'source hmis org units');
    assert.ok(line, formatReport(report));
    return { line, report };
  }

  it('fails naming an org unit DHIS2 does not have', async () => {
    const { line } = await orgUnitsLine([ORG_UNITS.bo, 'NoSuchOu01A']);
    assert.equal(line.status, 'fail');
    assert.equal(line.detail, 'sources[0].dhis2.orgUnits NoSuchOu01A: no such org unit in DHIS2');
  });

  it('fails naming an org unit outside the search scope, and the scope to grant; passes once granted', async () => {
    try {
      dhis2.restrictUser({ organisationUnits: [ORG_UNITS.sierraLeone], teiSearchOrganisationUnits: [ORG_UNITS.bo] });
      const { line, report } = await orgUnitsLine([ORG_UNITS.ngelehunChc, OUTSIDE]);
      assert.equal(line.status, 'fail');
      assert.equal(
        line.detail,
        `sources[0].dhis2.orgUnits ${OUTSIDE} is outside the search scope of the user of sources[0].auth: DHIS2 refuses every poll naming it (HTTP 403 "Organisation unit is not part of the search scope"); in DHIS2, give that user ${OUTSIDE}, or an org unit above it, as a search org unit ("Search organisation units"), or remove it from sources[0].dhis2.orgUnits`,
      );
      // The auth works: the line above says so, and the poll's line does not blame the credentials.
      assert.equal(report.checks.find((c) => c.name === 'source hmis')?.status, 'ok');
      const poll = report.checks.find((c) => c.name === 'source hmis poll');
      assert.equal(poll?.status, 'fail');
      assert.doesNotMatch(poll?.detail ?? '', /refused the credentials/);

      dhis2.restrictUser({
        organisationUnits: [ORG_UNITS.sierraLeone],
        teiSearchOrganisationUnits: [ORG_UNITS.sierraLeone],
      });
      const granted = await orgUnitsLine([ORG_UNITS.ngelehunChc, OUTSIDE]);
      assert.equal(granted.line.status, 'ok', granted.line.detail);
      assert.equal(
        granted.line.detail,
        `${ORG_UNITS.ngelehunChc}, ${OUTSIDE} found in DHIS2, within the user's search scope`,
      );
    } finally {
      dhis2.restrictUser(undefined);
    }
  });

  it('with a write-back, fails naming an org unit outside the capture scope, though searched', async () => {
    try {
      // Capture in Bo, search everywhere: polled, but the write-back to records in Gbenikoro MCHP is refused.
      dhis2.restrictUser({ organisationUnits: [ORG_UNITS.bo], teiSearchOrganisationUnits: [ORG_UNITS.sierraLeone] });
      const { line } = await orgUnitsLine([ORG_UNITS.ngelehunChc, OUTSIDE], true);
      assert.equal(line.status, 'fail');
      assert.equal(
        line.detail,
        `sources[0].dhis2.orgUnits ${OUTSIDE} is outside the capture scope of the user of sources[0].auth: DHIS2 refuses the write-back to records there (E1000, E1102); in DHIS2, give that user ${OUTSIDE}, or an org unit above it, as a data capture org unit ("Data capture and maintenance organisation units")`,
      );
      const without = await orgUnitsLine([ORG_UNITS.ngelehunChc, OUTSIDE], false);
      assert.equal(without.line.status, 'ok', 'without a write-back the capture scope is not needed');
    } finally {
      dhis2.restrictUser(undefined);
    }
  });

  it('passes for a superuser, whom DHIS2 holds to no scope', async () => {
    const { line } = await orgUnitsLine([ORG_UNITS.bo, OUTSIDE], true);
    assert.equal(line.status, 'ok');
    assert.equal(
      line.detail,
      `${ORG_UNITS.bo}, ${OUTSIDE} found in DHIS2, the user of the auth is a superuser (ALL), held to no org unit scope`,
    );
  });
});
