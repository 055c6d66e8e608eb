// `notAfter` / `notBefore` on DATE fields: a date out of order is sent with a warning (OpenCRVS checks
// the form's date rules only at DECLARE), and a mapping that names a bound wrongly fails to load.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { todayFor } from '../../src/mapping/date-order.js';
import {
  bundleFetcher,
  loadMappings,
  type MappedResult,
  type MapResult,
  mapInput,
  mapSubject,
  type Resource,
} from '../../src/mapping/index.js';
import { ANY_PATIENT_BIRTH, mappingFiles } from './mapping-files.js';

const { write, loadError } = mappingFiles('date-order');

const head = `${ANY_PATIENT_BIRTH}fields:
  child.name: '%subject.name'
`;
const routing = { defaultOffice: 'office-1', facilities: {} };

function mapped(result: MapResult): MappedResult {
  assert.equal(result.status, 'mapped', JSON.stringify(result));
  return result as MappedResult;
}

function fixture(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8'));
}

describe('today for a date check', () => {
  const now = Date.parse('2026-03-01T22:30:00Z');
  it("is the source zone's date", () => {
    assert.equal(todayFor('Africa/Nairobi', now), '2026-03-02'); // 01:30 on the 2nd at +03:00
    assert.equal(todayFor('America/Santiago', now), '2026-03-01');
  });
  it('is the latest date on earth without a zone: a birth today anywhere is not after today', () => {
    assert.equal(todayFor(undefined, now), '2026-03-02'); // UTC+14 is already on the 2nd
    assert.equal(todayFor(undefined, Date.parse('2026-03-01T09:00:00Z')), '2026-03-01');
  });
});

describe('a date field out of order', () => {
  const set = loadMappings({
    files: [
      write(
        `${head}  child.dob:\n    from: '%subject.birthDate'\n    notAfter: today\n  mother.dob:\n    from: "%subject.extension.where(url = 'mother-dob').value"\n    notAfter: [child.dob, today]\n`,
      ),
    ],
    routing,
  });
  const id = set.mappings[0]?.id ?? '';
  const patient = (birthDate: string, motherDob?: string): Resource =>
    ({
      resourceType: 'Patient',
      id: 'p',
      name: [{ family: 'Doe', given: ['Ann'] }],
      birthDate,
      ...(motherDob ? { extension: [{ url: 'mother-dob', valueDate: motherDob }] } : {}),
    }) as Resource;

  it('is sent as it is, with a warning that names the fields and not the dates', async () => {
    const r = mapped(await mapSubject(set, id, 'Patient/p', bundleFetcher([patient('2999-01-01', '2999-06-01')])));
    assert.equal(r.declaration['child.dob'], '2999-01-01');
    assert.equal(r.declaration['mother.dob'], '2999-06-01');
    const order = r.warnings.filter((w) => / is (after|before) /.test(w));
    assert.deepEqual(
      order.map((w) => w.split(';')[0]),
      ['child.dob is after today', 'mother.dob is after child.dob', 'mother.dob is after today'],
    );
    assert.ok(!order.some((w) => w.includes('2999')), 'no dates in warnings');
  });

  it('gives no warning in order, on the same day, or when the bound has no value', async () => {
    const today = todayFor(undefined);
    const sameDay = mapped(await mapSubject(set, id, 'Patient/p', bundleFetcher([patient(today, today)])));
    const noMother = mapped(await mapSubject(set, id, 'Patient/p', bundleFetcher([patient('2024-05-10')])));
    const inOrder = mapped(
      await mapSubject(set, id, 'Patient/p', bundleFetcher([patient('2024-05-10', '1990-12-01')])),
    );
    for (const r of [sameDay, noMother, inOrder]) {
      assert.deepEqual(
        r.warnings.filter((w) => / is (after|before) /.test(w)),
        [],
      );
    }
  });
});

describe('the shipped mappings', () => {
  type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
  const all = loadMappings({ routing });

  it('warn of a death dated before the birth, and still send it', async () => {
    const bundle = structuredClone(fixture('fhir/openmrs/openmrs-death-bundle.json')) as unknown as Entries;
    const deceased = bundle.entry.find((e) => e.resource.resourceType === 'Patient')?.resource;
    assert.ok(deceased && typeof deceased.deceasedDateTime === 'string');
    const before = mapped(await mapInput(all, bundle));
    assert.deepEqual(
      before.warnings.filter((w) => w.includes(' is before ')),
      [],
    );
    deceased.birthDate = '2030-01-01';
    const r = mapped(await mapInput(all, bundle));
    assert.equal(r.declaration['deceased.dob'], '2030-01-01');
    assert.ok(
      r.warnings.some((w) => w.startsWith('eventDetails.date is before deceased.dob;')),
      r.warnings.join('\n'),
    );
  });

  it('warn of a mother born after her child', async () => {
    const bundle = structuredClone(fixture('fhir/openmrs/openmrs-birth-bundle.json')) as unknown as Entries;
    const mother = bundle.entry.find((e) => e.resource.resourceType === 'RelatedPerson')?.resource;
    assert.ok(mother);
    mother.birthDate = '2025-01-01';
    // Stated as the mother: a woman linked without a relationship, born after the child, is not taken as her.
    mother.relationship = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH' }] }];
    const r = mapped(await mapInput(all, bundle));
    assert.equal(r.declaration['mother.dob'], '2025-01-01');
    assert.ok(
      r.warnings.some((w) => w.startsWith('mother.dob is after child.dob;')),
      r.warnings.join('\n'),
    );
  });
});

describe('a bound named wrongly', () => {
  const boundError = (fields: string) => loadError(`${head}${fields}`);

  it('stops the load with the key path', () => {
    const notDate = boundError(`  child.gender:\n    from: '%subject.gender'\n    notAfter: today\n`);
    assert.equal(notDate.path, "fields['child.gender']");
    assert.match(notDate.message, /notAfter and notBefore apply to DATE fields, not SELECT/);
    const unknown = boundError(`  child.dob:\n    from: '%subject.birthDate'\n    notBefore: [today, child.name]\n`);
    assert.equal(unknown.path, "fields['child.dob'].notBefore[1]");
    assert.match(unknown.message, /child\.name is not a DATE field/);
    const unfilled = boundError(`  mother.dob:\n    from: '%subject.birthDate'\n    notAfter: child.dob\n`);
    assert.equal(unfilled.path, "fields['mother.dob'].notAfter");
    assert.match(unfilled.message, /child\.dob is not filled by this mapping/);
    const itself = boundError(`  child.dob:\n    from: '%subject.birthDate'\n    notAfter: child.dob\n`);
    assert.match(itself.message, /cannot be bounded by itself/);
  });
});
