// The source fingerprint (mapping/fingerprint.ts): what tells a dismissed row "the record changed" from
// "the bridge maps the same record otherwise". It must follow the content of every record the mapping read,
// and nothing a server stamps on a save that changed nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import type { WriteBackSettings } from '../../src/config/types.js';
import { ownWritesOf, sourceFingerprint } from '../../src/mapping/fingerprint.js';
import { loadMappings, type MappedResult, type MappingSet, mapInput } from '../../src/mapping/index.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { writeBackResourceId } from '../../src/sources/writeback/fhir-target.js';
import { mappingFiles } from './mapping-files.js';

const ROUTING = {
  defaultOffice: 'LHUYvwY2Aq1',
  facilities: { y77LiPqLMoq: { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' } },
};

/** The mapped result, its fingerprint computed (the result carries it lazily, as the ledger asks for it). */
async function mapped(
  set: MappingSet,
  input: unknown,
): Promise<Omit<MappedResult, 'sourceFingerprint'> & { sourceFingerprint: string }> {
  const result = await mapInput(set, input);
  assert.equal(result.status, 'mapped', JSON.stringify(result));
  assert.ok(result.status === 'mapped' && result.sourceFingerprint);
  return { ...result, sourceFingerprint: result.sourceFingerprint() };
}

const bundle = (resources: Resource[]) => ({
  resourceType: 'Bundle',
  type: 'collection',
  entry: resources.map((resource) => ({ resource })),
});

/** The shipped mapping with a birth weight range the demo weights fall outside: the weight is left out. */
function narrowerWeight(shipped: string): string {
  const narrowed = shipped.replace(/^ {4}max: 6\n/m, '    max: 2\n');
  assert.notEqual(narrowed, shipped, 'the range was found in the shipped mapping');
  return mappingFiles('fingerprint').write(narrowed);
}

describe('source fingerprint: FHIR', () => {
  const shipped = readFileSync(new URL('../../mappings/birth.fhir.yaml', import.meta.url), 'utf8');
  const set = loadMappings({ names: ['birth.fhir'], routing: ROUTING });
  const birth = () => generateBirth(0, { prefix: 'fp' }) as Resource[];
  const motherId = 'fp-birth-0-mother';

  it('is the same for the same records saved again, in another order, with other server stamps', async () => {
    const first = await mapped(set, bundle(birth()));
    const saved = birth()
      .reverse()
      .map(
        (r, i) =>
          ({
            ...r,
            meta: { versionId: String(i + 7), lastUpdated: '2027-01-01T00:00:00Z', source: `#req-${i}` },
          }) as Resource,
      );
    const again = await mapped(set, bundle(saved));
    assert.equal(again.sourceFingerprint, first.sourceFingerprint);
    assert.equal(again.payloadHash, first.payloadHash);
  });

  it('changes with a context record the payload does not show (the mother Patient), and with a kept meta element', async () => {
    const first = await mapped(set, bundle(birth()));
    const phone = birth().map((r) =>
      r.id === motherId ? ({ ...r, telecom: [{ system: 'phone', value: '+260 000 0000' }] } as Resource) : r,
    );
    const changed = await mapped(set, bundle(phone));
    assert.equal(changed.payloadHash, first.payloadHash, 'the mapping does not read her phone');
    assert.notEqual(changed.sourceFingerprint, first.sourceFingerprint);
    const tagged = birth().map((r) =>
      r.id === motherId ? ({ ...r, meta: { tag: [{ code: 'reviewed' }] } } as Resource) : r,
    );
    assert.notEqual((await mapped(set, bundle(tagged))).sourceFingerprint, first.sourceFingerprint);
  });

  it('ignores a narrative the server regenerated, and follows a changed CodeableConcept text', async () => {
    const narrative = (div: string) => ({
      status: 'generated',
      div: `<div xmlns="http://www.w3.org/1999/xhtml">${div}</div>`,
    });
    const withNarrative = (div: string) =>
      birth().map((r) =>
        r.resourceType === 'Encounter'
          ? ({
              ...r,
              text: narrative(div),
              contained: [{ resourceType: 'Location', id: 'ward', name: 'Maternity ward', text: narrative(div) }],
            } as Resource)
          : r.resourceType === 'Observation' || r.resourceType === 'Patient'
            ? ({ ...r, text: narrative(div) } as Resource)
            : r,
      );
    const first = await mapped(set, bundle(withNarrative('Birth of a girl, 3.2 kg')));
    const regenerated = await mapped(set, bundle(withNarrative('<p>Birth of a girl</p><p>3.2 kg</p>')));
    assert.equal(regenerated.sourceFingerprint, first.sourceFingerprint);

    // The text of the weight's code is what someone recorded: content, as any other element.
    const described = birth().map((r) =>
      r.resourceType === 'Observation'
        ? ({ ...r, code: { ...(r as { code: object }).code, text: 'Birth weight, re-weighed' } } as Resource)
        : r,
    );
    const changed = await mapped(set, bundle(described));
    assert.equal(changed.payloadHash, (await mapped(set, bundle(birth()))).payloadHash, 'the mapping reads the coding');
    assert.notEqual(changed.sourceFingerprint, (await mapped(set, bundle(birth()))).sourceFingerprint);
  });

  it('is the same when the mapping makes another payload of the same records', async () => {
    const first = await mapped(set, bundle(birth()));
    const other = loadMappings({ files: [narrowerWeight(shipped)], routing: ROUTING });
    const otherwise = await mapped(other, bundle(birth()));
    assert.notEqual(otherwise.payloadHash, first.payloadHash, 'the weight is left out');
    assert.equal(otherwise.sourceFingerprint, first.sourceFingerprint);
  });
});

describe('source fingerprint: an invalid reading', () => {
  const set = loadMappings({ names: ['birth.fhir'], routing: ROUTING });
  const birth = () => generateBirth(0, { prefix: 'fp' }) as Resource[];
  // How src/app.ts resolves an office OpenCRVS closed since: as no office.
  const officeClosed = { resolveLocation: () => undefined };
  const invalid = async (resources: Resource[], options = {}) => {
    const result = await mapInput(set, bundle(resources), options);
    assert.equal(result.status, 'invalid', JSON.stringify(result));
    return result.status === 'invalid' ? result.sourceFingerprint?.() : undefined;
  };

  it('carries the fingerprint of the records read: a closed office changes nothing of it, a changed record does', async () => {
    const sent = (await mapped(set, bundle(birth()))).sourceFingerprint;
    assert.equal(await invalid(birth(), officeClosed), sent, 'the same records, refused for the office');
    // The birth date cut to its month: a record that cannot be dated, kept as invalid (trigger.invalid).
    const child = birth().map((r) =>
      r.resourceType === 'Patient' && r.id === 'fp-birth-0-child'
        ? ({ ...r, birthDate: String((r as { birthDate?: string }).birthDate).slice(0, 7) } as Resource)
        : r,
    );
    const noDay = await invalid(child);
    assert.match(noDay ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(noDay, sent);
    assert.equal(await invalid(child, officeClosed), noDay);
  });
});

/** A source's write-back settings as the config loader gives them (its FHIR keys defaulted). */
function writeBack(settings: Partial<WriteBackSettings>): WriteBackSettings {
  return {
    enabled: true,
    target: 'identifier',
    resource: 'subject',
    identifierSystem: 'http://opencrvs.org/tracking-id',
    maxAttempts: 8,
    baseDelayMs: 1000,
    maxDelayMs: 60_000,
    ...settings,
  };
}

describe('source fingerprint: the FHIR write-back left out', () => {
  const system = 'http://opencrvs.org/tracking-id';
  const forSource = { id: 'emr', kind: 'fhir' as const };
  const set = loadMappings({ names: ['birth.fhir'], routing: ROUTING, forSource, writeBack: writeBack({}) });
  const birth = () => generateBirth(0, { prefix: 'fp' }) as Resource[];
  const childId = 'fp-birth-0-child';
  /** The records with the tracking id as an identifier on `id` (as FhirWriteBack writes it), and `more`. */
  const written = (id: string, more: unknown[] = []) =>
    birth().map((r) =>
      r.id === id
        ? ({
            ...r,
            identifier: [
              ...((r as { identifier?: unknown[] }).identifier ?? []),
              ...more,
              { system, value: 'BXYZ123' },
            ],
          } as Resource)
        : r,
    );

  it('is the same once the tracking id is on the subject Patient or the trigger Encounter', async () => {
    const first = await mapped(set, bundle(birth()));
    assert.equal((await mapped(set, bundle(written(childId)))).sourceFingerprint, first.sourceFingerprint);
    const encounter = birth().find((r) => r.resourceType === 'Encounter' && r.id?.endsWith('birth'))?.id;
    assert.ok(encounter, 'the birth encounter');
    assert.equal((await mapped(set, bundle(written(encounter)))).sourceFingerprint, first.sourceFingerprint);
    // Another identifier written beside it is a change of the record.
    const mrn = { system: 'urn:hospital:mrn', value: '77' };
    assert.notEqual((await mapped(set, bundle(written(childId, [mrn])))).sourceFingerprint, first.sourceFingerprint);
    // A source with no write-back reads the tracking id as any other identifier.
    const plain = loadMappings({ names: ['birth.fhir'], routing: ROUTING, forSource });
    assert.notEqual(
      (await mapped(plain, bundle(written(childId)))).sourceFingerprint,
      (await mapped(plain, bundle(birth()))).sourceFingerprint,
    );
  });

  /** The shipped mapping's context with `tasks` as its Task search found them. */
  const taskSearch = () => {
    const mapping = set.mappings.find((m) => m.context.some((item) => item.name === 'tasks'));
    assert.ok(mapping, 'the shipped mapping searches Tasks');
    const subject = birth().find((r) => r.id === childId) as Resource;
    const ctx = (tasks: unknown[]) => ({ subject, subjectRef: `Patient/${childId}`, vars: { tasks }, warnings: [] });
    return { mapping, ctx };
  };

  it('leaves out the Task the write-back created to carry the tracking id, should a context search read it', () => {
    const { mapping, ctx } = taskSearch();
    const job = { sourceId: 'emr', eventType: 'birth', subjectKey: `Patient/${childId}` };
    const id = writeBackResourceId({
      ...job,
      rowId: 1,
      sourceRef: 'Encounter/e',
      trackingId: 'BXYZ123',
      eventId: null,
    });
    const carrier = { resourceType: 'Task', id, status: 'completed', identifier: [{ system, value: 'BXYZ123' }] };
    const own = ownWritesOf({ kind: 'fhir', writeBack: writeBack({ target: 'task' }) });
    assert.equal(sourceFingerprint(mapping, ctx([carrier]), own), sourceFingerprint(mapping, ctx([]), own));
    // Not a carrier of this write-back: another type than its target's, or an id that is not the bridge's.
    const document = ownWritesOf({ kind: 'fhir', writeBack: writeBack({ target: 'documentReference' }) });
    assert.notEqual(
      sourceFingerprint(mapping, ctx([carrier]), document),
      sourceFingerprint(mapping, ctx([]), document),
    );
    const emrTask = { ...carrier, id: 'emr-task-7' };
    assert.notEqual(sourceFingerprint(mapping, ctx([emrTask]), own), sourceFingerprint(mapping, ctx([]), own));
  });

  it("leaves out another source's write-back of the same server: its identifier system and its carrier", async () => {
    const deathSystem = 'http://hospital.example.org/death-tracking-id';
    const deaths = writeBack({ target: 'task', identifierSystem: deathSystem });
    const sameServer = loadMappings({
      names: ['birth.fhir'],
      routing: ROUTING,
      forSource,
      writeBack: writeBack({}),
      sameServerWriteBacks: [deaths],
    });
    const motherId = 'fp-birth-0-mother';
    const deathWritten = birth().map((r) =>
      r.id === motherId
        ? ({
            ...r,
            identifier: [...((r as { identifier?: unknown[] }).identifier ?? []), { system: deathSystem, value: 'D1' }],
          } as Resource)
        : r,
    );
    const first = await mapped(sameServer, bundle(birth()));
    assert.equal((await mapped(sameServer, bundle(deathWritten))).sourceFingerprint, first.sourceFingerprint);
    // Without the other source's write-back, its identifier is the mother's content.
    assert.notEqual(
      (await mapped(set, bundle(deathWritten))).sourceFingerprint,
      (await mapped(set, bundle(birth()))).sourceFingerprint,
    );
    // The other source's Task carrier (target task), though this source writes an identifier.
    const { mapping, ctx } = taskSearch();
    const id = writeBackResourceId({
      sourceId: 'deaths',
      eventType: 'death',
      subjectKey: `Patient/${motherId}`,
      rowId: 2,
      sourceRef: 'Encounter/e',
      trackingId: 'DXYZ123',
      eventId: null,
    });
    const carrier = {
      resourceType: 'Task',
      id,
      status: 'completed',
      identifier: [{ system: deathSystem, value: 'D' }],
    };
    const own = ownWritesOf({ kind: 'fhir', writeBack: writeBack({}) }, [deaths]);
    assert.equal(sourceFingerprint(mapping, ctx([carrier]), own), sourceFingerprint(mapping, ctx([]), own));
    const alone = ownWritesOf({ kind: 'fhir', writeBack: writeBack({}) });
    assert.notEqual(sourceFingerprint(mapping, ctx([carrier]), alone), sourceFingerprint(mapping, ctx([]), alone));
  });

  it('gives the fingerprint as the rule before took it (its own write-back only) where the others of its server add one', async () => {
    const deathSystem = 'http://hospital.example.org/death-tracking-id';
    const deaths = writeBack({ identifierSystem: deathSystem });
    const motherId = 'fp-birth-0-mother';
    const deathWritten = birth().map((r) =>
      r.id === motherId
        ? ({
            ...r,
            identifier: [...((r as { identifier?: unknown[] }).identifier ?? []), { system: deathSystem, value: 'D1' }],
          } as Resource)
        : r,
    );
    const withOthers = (own: boolean, others: WriteBackSettings[]) =>
      loadMappings({
        names: ['birth.fhir'],
        routing: ROUTING,
        forSource,
        ...(own ? { writeBack: writeBack({}) } : {}),
        sameServerWriteBacks: others,
      });
    const plain = loadMappings({ names: ['birth.fhir'], routing: ROUTING, forSource });
    for (const [own, before] of [
      [true, set],
      [false, plain],
    ] as const) {
      const held = await mapped(withOthers(own, [deaths]), bundle(deathWritten));
      assert.ok(held.ownOnlyFingerprint, `own write-back: ${own}`);
      const earlier = await mapped(before, bundle(deathWritten));
      assert.equal(held.ownOnlyFingerprint(), earlier.sourceFingerprint);
      assert.notEqual(held.sourceFingerprint, earlier.sourceFingerprint);
    }
    // None where it cannot differ: no other source, or one writing under the same system.
    for (const others of [[], [writeBack({})]]) {
      assert.equal((await mapped(withOthers(true, others), bundle(deathWritten))).ownOnlyFingerprint, undefined);
    }
  });

  it("follows the content of a source's own Task the write-back put the tracking id on (target identifier, resource trigger)", () => {
    const { mapping, ctx } = taskSearch();
    const own = ownWritesOf({ kind: 'fhir', writeBack: writeBack({ target: 'identifier', resource: 'trigger' }) });
    const task = (office: string, tracked: boolean) => ({
      resourceType: 'Task',
      id: 'emr-task-7',
      status: 'requested',
      extension: [
        {
          url: 'http://opencrvs.org/specs/extension/regLastOffice',
          valueReference: { reference: `Location/${office}` },
        },
      ],
      ...(tracked ? { identifier: [{ system, value: 'BXYZ123' }] } : {}),
    });
    // The tracking id written onto it is no change; another office recorded on it is one.
    const before = sourceFingerprint(mapping, ctx([task('office-A', false)]), own);
    assert.equal(sourceFingerprint(mapping, ctx([task('office-A', true)]), own), before);
    assert.notEqual(sourceFingerprint(mapping, ctx([task('office-B', true)]), own), before);
  });
});

describe('source fingerprint: DHIS2', () => {
  const set = loadMappings({ names: ['birth.dhis2'], routing: ROUTING });
  const child = (): Record<string, unknown> =>
    JSON.parse(readFileSync(new URL('../fixtures/dhis2/bridge/child-trackedEntity.json', import.meta.url), 'utf8'));
  /** Every `key` at any depth set to `value`. */
  const stamp = (node: unknown, key: string, value: string): void => {
    if (Array.isArray(node)) for (const item of node) stamp(item, key, value);
    else if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (key in record) record[key] = value;
      for (const v of Object.values(record)) stamp(v, key, value);
    }
  };

  it('ignores when and by whom DHIS2 last saved, and follows an attribute changed with the event as it was', async () => {
    const first = await mapped(set, child());
    const saved = child();
    stamp(saved, 'updatedAt', '2027-02-02T10:00:00.000');
    stamp(saved, 'storedBy', 'another-user');
    (saved as { updatedBy?: unknown }).updatedBy = { username: 'another-user' };
    const again = await mapped(set, saved);
    assert.notEqual(again.sourceVersion, first.sourceVersion, 'the version the ledger shows moved');
    assert.equal(again.sourceFingerprint, first.sourceFingerprint);

    // A correction of an attribute on the tracked entity (the event untouched): other content.
    const corrected = child();
    const attributes = corrected.attributes as Array<{ attribute: string; value: string }>;
    const gender = attributes.find((a) => a.attribute === 'cejWyOfXge6');
    assert.ok(gender);
    gender.value = 'Female';
    const changed = await mapped(set, corrected);
    assert.notEqual(changed.sourceFingerprint, first.sourceFingerprint);
  });
});

describe('source fingerprint: the DHIS2 write-back left out', () => {
  const child = (): Record<string, unknown> =>
    JSON.parse(readFileSync(new URL('../fixtures/dhis2/bridge/child-trackedEntity.json', import.meta.url), 'utf8'));
  const forSource = { id: 'dhis2', kind: 'dhis2' as const };
  const load = (settings?: Partial<WriteBackSettings>) =>
    loadMappings({
      names: ['birth.dhis2'],
      routing: ROUTING,
      forSource,
      ...(settings ? { writeBack: writeBack(settings) } : {}),
    });
  type Item = Record<string, unknown>;
  const events = (te: Item): Item[] =>
    (te.enrollments as Item[]).flatMap((en) => (en.events as Item[] | undefined) ?? []);
  /** The child with the tracking id in data element `uid` of its first event, as DHIS2 stores it. */
  const withDataValue = (uid: string): Item => {
    const te = child();
    const [event] = events(te);
    assert.ok(event);
    const stored = { dataElement: uid, value: 'BXYZ123', createdAt: '2027-01-01T00:00:00.000', storedBy: 'bridge' };
    event.dataValues = [...((event.dataValues as unknown[]) ?? []), stored];
    return te;
  };
  /** The child with the tracking id in attribute `uid`, on the tracked entity and its enrollment. */
  const withAttribute = (uid: string): Item => {
    const te = child();
    const value = { attribute: uid, value: 'BXYZ123' };
    te.attributes = [...((te.attributes as unknown[]) ?? []), value];
    for (const en of te.enrollments as Item[]) en.attributes = [...((en.attributes as unknown[]) ?? []), value];
    return te;
  };

  it("leaves out the tracking id's data value, and nothing else", async () => {
    const set = load({ dataElement: 'trackingId1' });
    const first = await mapped(set, child());
    assert.equal((await mapped(set, withDataValue('trackingId1'))).sourceFingerprint, first.sourceFingerprint);
    assert.notEqual((await mapped(set, withDataValue('otherDeUid1'))).sourceFingerprint, first.sourceFingerprint);
    // Disabled, the write-back still wrote the ids it wrote before.
    const disabled = load({ dataElement: 'trackingId1', enabled: false });
    assert.equal((await mapped(disabled, withDataValue('trackingId1'))).sourceFingerprint, first.sourceFingerprint);
    const none = load();
    assert.notEqual(
      (await mapped(none, withDataValue('trackingId1'))).sourceFingerprint,
      (await mapped(none, child())).sourceFingerprint,
    );
  });

  it("leaves out the tracking id's attribute value, and nothing else", async () => {
    const set = load({ attribute: 'trackingAt1' });
    const first = await mapped(set, child());
    assert.equal((await mapped(set, withAttribute('trackingAt1'))).sourceFingerprint, first.sourceFingerprint);
    assert.notEqual((await mapped(set, withAttribute('otherAtUid1'))).sourceFingerprint, first.sourceFingerprint);
  });

  it('gives the fingerprint as the rule before took it (its own write-back only) where the others of its server add one', async () => {
    const loadWith = (own: Partial<WriteBackSettings> | undefined, others: WriteBackSettings[]) =>
      loadMappings({
        names: ['birth.dhis2'],
        routing: ROUTING,
        forSource,
        ...(own ? { writeBack: writeBack(own) } : {}),
        sameServerWriteBacks: others,
      });
    const other = writeBack({ dataElement: 'trackingId2' });
    for (const own of [{ dataElement: 'trackingId1' }, undefined]) {
      const held = await mapped(loadWith(own, [other]), withDataValue('trackingId2'));
      assert.ok(held.ownOnlyFingerprint);
      const before = await mapped(load(own), withDataValue('trackingId2'));
      assert.equal(held.ownOnlyFingerprint(), before.sourceFingerprint);
      assert.notEqual(held.sourceFingerprint, before.sourceFingerprint);
    }
    // None where it cannot differ: no other source, or one writing the same data element.
    for (const others of [[], [writeBack({ dataElement: 'trackingId1' })]]) {
      const result = await mapped(loadWith({ dataElement: 'trackingId1' }, others), withDataValue('trackingId2'));
      assert.equal(result.ownOnlyFingerprint, undefined);
    }
  });
});
