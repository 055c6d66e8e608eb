// doctor warns of DHIS2 write-backs of different event types into one field: the second event of one
// person (a child's death after its birth) finds the first's tracking id there, and the DHIS2 write-back,
// which never overwrites another value, abandons it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/index.js';
import { runDoctor } from '../../src/doctor/index.js';
import { checkWriteBackSharing } from '../../src/doctor/write-back-sharing.js';

const ATTRIBUTE = 'XyZ123abcDE';

function dhis2(id: string, writeBack: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    id,
    kind: 'dhis2',
    baseUrl: 'https://hmis.example.org',
    auth: { type: 'pat', token: 'd2pat_0123456789abcdef0123456789abcdef' },
    dhis2: { program: 'IpHINAT79UW' },
    writeBack,
    ...extra,
  };
}

function sourcesOf(...sources: Array<Record<string, unknown>>) {
  return configFromObject({ opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused' }, sources })
    .sources;
}

describe('doctor: DHIS2 write-backs of two event types into one field', () => {
  it('warns of one source whose births and deaths write to one attribute, naming the key and the way out', () => {
    const sources = sourcesOf(dhis2('hmis', { attribute: ATTRIBUTE }));
    const [line, ...more] = checkWriteBackSharing(sources, () => ['death', 'birth']);
    assert.equal(more.length, 0);
    assert.equal(line?.status, 'warn');
    assert.equal(line?.name, 'write-back');
    assert.match(
      line?.detail ?? '',
      /^sources\[0\]\.writeBack writes the tracking ids of birth and death events \(hmis: birth, death\) to the same writeBack\.attribute XyZ123abcDE on one DHIS2 server: .* the second event's write-back is abandoned; split source hmis into one source per event type/,
    );
  });

  it('warns of a births source and a deaths source of one server (its root or its /api) sharing the attribute or a stage data element', () => {
    const attribute = sourcesOf(
      dhis2('births', { attribute: ATTRIBUTE }),
      dhis2('deaths', { attribute: ATTRIBUTE }, { baseUrl: 'https://HMIS.example.org/api/' }),
    );
    const types = (id: string) => [id === 'births' ? 'birth' : 'death'];
    const [line] = checkWriteBackSharing(attribute, types);
    assert.match(
      line?.detail ?? '',
      /^sources\[0\]\.writeBack and sources\[1\]\.writeBack write the tracking ids of birth and death events \(births: birth; deaths: death\)/,
    );
    const stage = { dataElement: 'uf3svrmp8Oj', programStage: 'A03MvHHogjR' };
    assert.equal(checkWriteBackSharing(sourcesOf(dhis2('births', stage), dhis2('deaths', stage)), types).length, 1);
  });

  it('says nothing where each event type has its own field, or one event type only', () => {
    const types = (id: string) => (id.startsWith('births') ? ['birth'] : ['death']);
    const quiet = [
      // A data element of the triggering event: each event is its own.
      sourcesOf(dhis2('hmis', { dataElement: 'uf3svrmp8Oj' })),
      sourcesOf(dhis2('births', { attribute: ATTRIBUTE }), dhis2('deaths', { attribute: 'AbC123defGH' })),
      sourcesOf(
        dhis2('births', { attribute: ATTRIBUTE }),
        dhis2('deaths', { attribute: ATTRIBUTE }, { baseUrl: 'https://other.example.org' }),
      ),
      sourcesOf(dhis2('births', { attribute: ATTRIBUTE }), dhis2('deaths', { attribute: ATTRIBUTE, enabled: false })),
      // One event type split by org unit: one record, one row, one tracking id.
      sourcesOf(dhis2('births-north', { attribute: ATTRIBUTE }), dhis2('births-south', { attribute: ATTRIBUTE })),
    ];
    for (const sources of quiet)
      assert.deepEqual(checkWriteBackSharing(sources, types), [], JSON.stringify(sources.map((s) => s.writeBack)));
    // Mappings that did not load: their types are unknown, and the mappings check says why.
    assert.deepEqual(
      checkWriteBackSharing(sourcesOf(dhis2('hmis', { attribute: ATTRIBUTE })), () => undefined),
      [],
    );
  });

  it('is among the checks doctor runs, from the shipped mappings of a source', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doctor-wb-sharing-'));
    try {
      const file = join(dir, 'bridge.json');
      const source = dhis2(
        'hmis',
        { attribute: ATTRIBUTE },
        { baseUrl: 'http://127.0.0.1:9', mappings: ['birth.dhis2', 'death.dhis2'] },
      );
      writeFileSync(
        file,
        JSON.stringify({
          opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused-token-0123456789' },
          store: { path: join(dir, 'bridge.db') },
          sources: [source],
          routing: { defaultOffice: 'LHUYvwY2Aq1' },
        }),
      );
      const report = await runDoctor({ file, env: {} });
      const line = report.checks.find((c) => c.name === 'write-back');
      assert.equal(line?.status, 'warn', JSON.stringify(report.checks.map((c) => c.name)));
      assert.match(line?.detail ?? '', /birth and death events \(hmis: birth, death\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
