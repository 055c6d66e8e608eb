import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evalFhirPath, globalSchema, parseSearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { generateDemoRecords } from '../../src/sandbox/demo/generate.js';
import { loadR4Definitions } from '../../src/sandbox/fhir/definitions.js';
import { SandboxRepository } from '../../src/sandbox/fhir/repository.js';
import { type SearchSource, searchRecords } from '../../src/sandbox/fhir/search.js';
import { expressionForType, searchExpression } from '../../src/sandbox/fhir/search-expression.js';
import type { SearchIndexes } from '../../src/sandbox/fhir/search-filter.js';
import { lastTwoSegments } from '../../src/sandbox/fhir/search-values.js';

loadR4Definitions();

const BASE = 'https://emr.example.org/fhir';

/** The same repository seen without its indexes: every search scans, as before the index existed. */
function linearView(repo: SandboxRepository): SearchSource {
  return {
    recordsOf: (type) => repo.recordsOf(type),
    logOf: (type) => repo.logOf(type),
    isCurrent: (record) => repo.isCurrent(record),
  };
}

/** Every page of a search (following cursors) as ids, plus each page's total. */
function allPages(source: SearchSource, type: string, query: Record<string, string>): string[] {
  const out: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const result = searchRecords(
      source,
      parseSearchRequest(type as Resource['resourceType'], { ...query, ...(cursor ? { _cursor: cursor } : {}) }),
    );
    out.push(`total=${result.total}`, ...result.page.map((r) => `${r.resource.id}@${r.resource.meta?.versionId}`));
    cursor = result.nextCursor;
    assert.ok(++pages < 500, 'paging does not end');
  } while (cursor);
  return out;
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure replays the same way. */
function randomFrom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PATIENTS = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
const CODES = ['8339-4', '29463-7', '8302-2'];

/** A reference to a patient in one of the spellings EMRs send. */
function spelling(id: string, pick: number): string {
  return [`Patient/${id}`, `${BASE}/Patient/${id}`, id][pick % 3] as string;
}

function observation(id: string, random: () => number): Resource {
  const patient = () => PATIENTS[Math.floor(random() * PATIENTS.length)] as string;
  const focus = Array.from({ length: Math.floor(random() * 3) }, () => ({
    reference: spelling(patient(), Math.floor(random() * 3)),
  }));
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: CODES[Math.floor(random() * CODES.length)] as string }] },
    ...(random() < 0.9 ? { subject: { reference: spelling(patient(), Math.floor(random() * 3)) } } : {}),
    ...(focus.length ? { focus } : {}),
  };
}

const QUERIES: Record<string, string>[] = [
  { subject: 'Patient/p1' },
  { subject: 'Patient/p1,Patient/p2,Patient/nobody', _count: '3' },
  { subject: 'p3', _sort: '-_lastUpdated', _count: '4' },
  { subject: `${BASE}/Patient/p4,p0`, _count: '5' },
  { subject: 'Patient/p2', code: 'http://loinc.org|8339-4,http://loinc.org|8302-2', _count: '2' },
  { focus: 'Patient/p0,Patient/p5', _count: '3' },
  { focus: 'p1', subject: 'Patient/p1' },
  { patient: 'Patient/p3', _sort: '_id', _count: '2' },
  { _id: 'o1,o2,o3,o9,o30,missing', subject: 'Patient/p2,p3', _count: '2' },
  { _id: 'o4,o5,o6,o7', _sort: '-_lastUpdated' },
  { subject: 'Patient/p1,Patient/p2', _sort: 'code', _count: '4' },
  { code: '8339-4', _count: '6' },
];

describe('FHIR sandbox reference index', () => {
  it('answers every query like a full scan through creates, updates, deletes and rolled-back transactions', async () => {
    const random = randomFrom(20261122);
    let now = 1_700_000_000_000;
    // The clock often stands still, so ties on _lastUpdated are common and the seq tie-break counts.
    const repo = new SandboxRepository(() => (random() < 0.5 ? now : ++now));
    const linear = linearView(repo);
    const compare = (round: number) => {
      for (const query of QUERIES) {
        const context = `round ${round}: ${JSON.stringify(query)}`;
        assert.deepEqual(allPages(repo, 'Observation', query), allPages(linear, 'Observation', query), context);
      }
    };
    for (let i = 0; i < 40; i++) await repo.updateResource(observation(`o${i}`, random));
    compare(0); // builds the indexes from what is stored
    for (let round = 1; round <= 30; round++) {
      for (let step = 0; step < 8; step++) {
        const id = `o${Math.floor(random() * 50)}`;
        const roll = random();
        if (roll < 0.2 && repo.exists('Observation', id)) await repo.deleteResource('Observation', id);
        else if (roll < 0.3) {
          // A transaction that writes and then fails: its writes must leave the index again.
          await assert.rejects(
            repo.withTransaction(async () => {
              await repo.updateResource(observation(id, random));
              if (repo.exists('Observation', 'o0')) await repo.deleteResource('Observation', 'o0');
              throw new Error('rolled back');
            }),
            /rolled back/,
          );
        } else await repo.updateResource(observation(id, random));
      }
      compare(round);
    }
  });

  it('moves an updated resource out of its old bucket and drops a deleted one', async () => {
    const repo = new SandboxRepository();
    const encounter = (reference: string): Resource => ({
      resourceType: 'Encounter',
      id: 'e1',
      status: 'finished',
      class: {},
      subject: { reference },
    });
    const found = (value: string) => {
      const result = searchRecords(repo, parseSearchRequest('Encounter', { subject: value }));
      return [result.total, ...result.page.map((r) => `${r.resource.id}@${r.resource.meta?.versionId}`)];
    };
    // What the index itself holds for a value, not only what a search lets through.
    const held = (value: string) =>
      repo.indexes.references.estimate('Encounter', 'subject', {
        typed: new Set(value.includes('/') ? [value] : []),
        bare: new Set(value.includes('/') ? [] : [value]),
      });
    await repo.updateResource(encounter('Patient/a'));
    assert.deepEqual(found('Patient/a'), [1, 'e1@1']);
    await repo.updateResource(encounter('Patient/b'));
    assert.deepEqual([found('Patient/a'), found('a'), found('Patient/b')], [[0], [0], [1, 'e1@2']]);
    assert.deepEqual([held('Patient/a'), held('a'), held('Patient/b'), held('b')], [0, 0, 1, 1]);
    await repo.deleteResource('Encounter', 'e1');
    assert.deepEqual([found('Patient/b'), held('Patient/b'), held('b')], [[0], 0, 0]);
    await assert.rejects(
      repo.withTransaction(async () => {
        await repo.updateResource(encounter('Patient/c'));
        throw new Error('undo');
      }),
    );
    assert.deepEqual([found('Patient/c'), held('Patient/c')], [[0], 0]);
    await repo.updateResource(encounter('Patient/b'));
    assert.deepEqual([found('b'), held('Patient/b')], [[1, 'e1@4'], 1]);
  });

  it('reads only the most selective indexed filter and never scans the type for it', async () => {
    const repo = new SandboxRepository();
    for (let i = 0; i < 30; i++) {
      const subject = { reference: i < 25 ? 'Patient/many' : `Patient/few-${i}` };
      await repo.updateResource({ resourceType: 'Observation', id: `o${i}`, status: 'final', code: {}, subject });
    }
    const looked: string[] = [];
    let scans = 0;
    const indexes: SearchIndexes = {
      record: (type, id) => {
        looked.push(`_id:${id}`);
        return repo.indexes.record(type, id);
      },
      references: {
        estimate: (type, code, query) => repo.indexes.references.estimate(type, code, query),
        lookup: (type, code, query) => {
          looked.push(`${code}:${[...query.typed, ...query.bare].join(',')}`);
          return repo.indexes.references.lookup(type, code, query);
        },
      },
    };
    const recordsOf = (type: string) => {
      scans++;
      return repo.recordsOf(type);
    };
    const source: SearchSource = { ...linearView(repo), recordsOf, indexes };
    const ids = (query: Record<string, string>) =>
      searchRecords(source, parseSearchRequest('Observation', query)).page.map((r) => r.resource.id);

    assert.deepEqual(ids({ subject: 'Patient/many', patient: 'few-26,few-27' }), []);
    assert.deepEqual(looked.splice(0), ['patient:few-26,few-27']);
    assert.deepEqual(ids({ subject: 'Patient/few-26,Patient/many', _id: 'o1,o26,o29' }), ['o1', 'o26']);
    assert.deepEqual(looked.splice(0), ['_id:o1', '_id:o26', '_id:o29']);
    assert.equal(scans, 0);
    assert.deepEqual(ids({ code: 'x' }), [], 'a token filter alone still scans');
    assert.equal(scans, 1);
  });

  it('matches a reference with the same semantics whichever side is absolute or bare', async () => {
    const repo = new SandboxRepository();
    const refs = ['Patient/x', `${BASE}/Patient/x`, 'x', 'Group/x', `${BASE}/Patient/y`];
    for (const [i, reference] of refs.entries()) {
      await repo.updateResource({
        resourceType: 'Encounter',
        id: `e${i}`,
        status: 'finished',
        class: {},
        subject: { reference },
      });
    }
    const ids = (value: string) =>
      searchRecords(repo, parseSearchRequest('Encounter', { subject: value }))
        .page.map((r) => r.resource.id)
        .sort();
    assert.deepEqual(ids('Patient/x'), ['e0', 'e1']);
    assert.deepEqual(ids('http://other.example/fhir/Patient/x'), ['e0', 'e1']);
    assert.deepEqual(ids('x'), ['e0', 'e1', 'e2', 'e3']);
    assert.deepEqual(ids('Group/x,y'), ['e3', 'e4']);
    for (const value of ['Patient/x', 'x', 'Group/x,y', `${BASE}/Patient/y`]) {
      assert.deepEqual(
        allPages(repo, 'Encounter', { subject: value }),
        allPages(linearView(repo), 'Encounter', { subject: value }),
      );
    }
  });
  it('splits filter values on commas, except escaped ones', async () => {
    const repo = new SandboxRepository();
    for (const code of ['a', 'b', 'a,b']) {
      await repo.updateResource({
        resourceType: 'Observation',
        id: `o-${code.length}${code[0]}`,
        status: 'final',
        code: { coding: [{ code }] },
      });
    }
    const ids = (code: string) =>
      searchRecords(repo, parseSearchRequest('Observation', { code })).page.map((r) => r.resource.id);
    assert.deepEqual(ids('a,b'), ['o-1a', 'o-1b']);
    assert.deepEqual(ids('a\\,b'), ['o-3a']);
  });
});

describe('FHIR sandbox search expressions', () => {
  it('evaluate to what the full R4 expression gives, for every parameter of the demo resources', () => {
    const resources: Resource[] = [
      ...generateDemoRecords(3, 2),
      {
        resourceType: 'Observation',
        id: 'rich',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }], text: 'weight' },
        subject: { reference: 'Patient/a' },
        focus: [{ reference: 'Patient/b' }],
        encounter: { reference: 'Encounter/e' },
        performer: [{ reference: 'Practitioner/p' }],
        valueQuantity: { value: 3, unit: 'kg' },
        effectiveDateTime: '2024-05-01',
      },
    ];
    let compared = 0;
    for (const resource of resources) {
      const params = globalSchema.types[resource.resourceType]?.searchParams ?? {};
      for (const [code, param] of Object.entries(params)) {
        const pruned = searchExpression(resource.resourceType, code);
        if (!param.expression || !pruned) continue;
        const full = JSON.stringify(evalFhirPath(param.expression, resource));
        assert.equal(JSON.stringify(evalFhirPath(pruned, resource)), full, `${resource.resourceType}.${code}`);
        compared++;
      }
    }
    assert.ok(compared > 100);
    assert.ok(!String(searchExpression('Observation', 'code')).includes('AllergyIntolerance'));
  });

  it('keeps branches that could turn an empty collection into a value', () => {
    const kept = String(expressionForType('Observation', 'Patient.name.exists() | Patient.name | Observation.code'));
    assert.ok(kept.includes('exists()'), kept);
    assert.ok(!kept.includes('Patient.name |'), kept);
    const observation = { resourceType: 'Observation', status: 'final', code: { text: 'w' } };
    const expression = "Patient.name.exists() | Patient.name.where(use = 'x') | Observation.code";
    assert.deepEqual(
      evalFhirPath(expressionForType('Observation', expression), observation),
      evalFhirPath(expression, observation),
    );
  });

  it('cuts a reference to its last two segments exactly as split/slice/join does', () => {
    for (const value of ['', 'a', '/', '/a', 'a/', 'a/b', 'a//b', 'http://h/fhir/Patient/1', 'Patient/1/_history/2']) {
      assert.equal(lastTwoSegments(value), value.split('/').slice(-2).join('/'), JSON.stringify(value));
    }
  });
});
