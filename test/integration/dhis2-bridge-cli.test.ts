// `opencrvs-bridge map --input` with DHIS2 tracker JSON, run as a separate process the way an integration
// engineer checks a programme's mapping before pointing the bridge at it; and `serve` refusing a DHIS2
// source whose uids are typed wrong.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCliSync } from './helpers/cli-sync.js';

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/dhis2/${path}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dhis2-map-cli-'));

const run = runCliSync;

const config = join(dir, 'bridge.yaml');
writeFileSync(
  config,
  `opencrvs:
  domain: farajaland.example.org
  clientId: bridge
  clientSecret: s3cret
routing:
  defaultOffice: LHUYvwY2Aq1
  facilities:
    y77LiPqLMoq: { office: DC5stjQ45n3, facility: R2i8nqg83Y0 }
`,
);

after(() => rmSync(dir, { recursive: true, force: true }));

describe('opencrvs-bridge map --input with DHIS2 tracker JSON', () => {
  it('maps a tracked entity of the demo Child Programme, routed by its org unit', () => {
    const r = run(['map', '--input', fixture('bridge/child-trackedEntity.json'), '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'mapped');
    assert.equal(out.mappingId, 'birth.dhis2');
    assert.equal(out.subjectRef, 'TrackedEntity/jryxKhLJz0X');
    assert.equal(out.declaration['child.dob'], '2026-09-30');
    assert.equal(out.declaration['child.birthLocation'], 'R2i8nqg83Y0');
    assert.equal(out.routing.sourceLocation, 'y77LiPqLMoq');
    assert.match(out.routing.via, /routing\.facilities\['y77LiPqLMoq'\]/);
  });

  // (Events, list pages and skipped records are covered without a process in test/unit/dhis2-source.test.ts.)
  it('refuses an event of a program without registration, with the reason (exit 2)', () => {
    const r = run(['map', '--input', fixture('dhis2-docs/GET_api_tracker_events__list_response.json')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /only tracker \(registration\) programs can be mapped/);
  });

  it('serve refuses a programme uid typed wrong before it starts, naming the key (exit 2)', () => {
    const typo = join(dir, 'typo.yaml');
    writeFileSync(
      typo,
      `opencrvs:
  domain: farajaland.example.org
  clientId: bridge
  clientSecret: s3cret
store: { path: ${JSON.stringify(join(dir, 'typo.db'))} }
sources:
  - id: hmis
    kind: dhis2
    baseUrl: http://127.0.0.1:9
    dhis2: { program: IpHINAT79U }
`,
    );
    const r = run(['serve', '--config', typo]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /sources\[0\]\.dhis2\.program: "IpHINAT79U" is not a DHIS2 uid \(11 characters, a letter then letters or digits\)/,
    );
  });
});
