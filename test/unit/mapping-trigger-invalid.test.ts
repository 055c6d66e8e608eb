// trigger.invalid: a record that looks like the event but whose data cannot show it is kept as invalid,
// with the rule's reason, instead of being dropped as "no evidence": compile, order, schema.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bundleFetcher, loadMappings, type Resource } from '../../src/mapping/index.js';
import { mappingFiles } from './mapping-files.js';

const { write, loadError } = mappingFiles('mapping-trigger-invalid');
const routing = { defaultOffice: 'office-1', facilities: {} };

const RULES = `eventType: birth
source: fhir
subject: { type: Patient }
trigger:
  unless:
    - reason: stillbirth
      if: "%subject.gender = 'unknown'"
    - reason: inactive
      if: '%subject.active = false'
      withEvidence: true
  invalid:
    - reason: no birth date
      if: '%subject.birthDate.empty()'
  when:
    - evidence: any patient
      if: '%subject.exists()'
fields:
  child.name: '%subject.name'
`;

describe('trigger.invalid in a mapping file', () => {
  const set = loadMappings({ files: [write(RULES)], routing });
  const id = set.mappings[0]?.id ?? '';
  const map = async (patient: Record<string, unknown>) => {
    const subject = { resourceType: 'Patient', id: 'p', name: [{ family: 'Doe', given: ['Ann'] }], ...patient };
    return set.mapSubjectDetailed(id, 'Patient/p', bundleFetcher([subject as Resource]));
  };

  it('keeps a record it matches as invalid with the reason, though an evidence rule holds', async () => {
    assert.equal(set.mappings[0]?.invalid.length, 1);
    const { result, excluded, noEvidence } = await map({});
    assert.deepEqual(result, {
      status: 'invalid',
      mappingId: id,
      eventType: 'birth',
      subjectRef: 'Patient/p',
      sourceRef: 'Patient/p',
      errors: [{ field: 'trigger', message: 'no birth date' }],
    });
    assert.equal(excluded, undefined);
    assert.equal(noEvidence, undefined);
    assert.equal((await map({ birthDate: '2024-05-10' })).result.status, 'mapped');
  });

  it('comes after the exclusions: those checked first, and those checked with the evidence', async () => {
    assert.equal((await map({})).result.status, 'invalid', 'without them, the rule holds');
    const stillbirth = await map({ gender: 'unknown' });
    assert.ok(stillbirth.result.status === 'skipped' && stillbirth.excluded, JSON.stringify(stillbirth));
    assert.equal(stillbirth.result.reason, 'stillbirth');
    // A record merged away is skipped as such: no one corrects the birth date of a duplicate.
    const inactive = await map({ active: false });
    assert.ok(inactive.result.status === 'skipped' && inactive.excluded, JSON.stringify(inactive));
    assert.equal(inactive.result.reason, 'inactive');
  });

  it('refuses an unknown key in an invalid rule, and names the rule of a bad expression', () => {
    const key = loadError(RULES.replace("if: '%subject.birthDate.empty()'", "if: 'true'\n      withEvidence: true"));
    assert.equal(key.path, 'trigger.invalid[0].withEvidence');
    assert.match(key.message, /unknown key/);
    const missing = loadError(RULES.replace('    - reason: no birth date\n', '    - '));
    assert.equal(missing.path, 'trigger.invalid[0].reason');
    const element = loadError(RULES.replace('%subject.birthDate.empty()', '%subject.birthdate.empty()'));
    assert.equal(element.path, 'trigger.invalid[0].if');
    assert.match(element.message, /Patient has no element 'birthdate'/);
  });
});
