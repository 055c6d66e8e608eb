import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary FHIR JSON and assert on it field by field
type Json = Record<string, any>;

async function post(url: string, body: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function get(url: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Json };
}

const CHILD = 'urn:uuid:0b0a4b7e-6c1f-4e53-9a59-1f0a3c2e7d11';
const MOTHER = 'urn:uuid:5d2f8c6a-3b7e-4f0c-8a1d-2e9b4c6f8a22';

describe('FHIR sandbox transaction and batch bundles', () => {
  let sandbox: FhirSandbox;
  before(async () => {
    sandbox = await startFhirSandbox({ port: 0 });
  });
  after(() => sandbox.close());

  it('runs a transaction, giving new ids and resolving urn:uuid references between its entries', async () => {
    const { status, body } = await post(sandbox.baseUrl, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:9e3c1d2b-8a7f-4c6e-b5d4-3a2f1e0d9c8b',
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] },
            subject: { reference: CHILD },
          },
          request: { method: 'POST', url: 'Observation' },
        },
        {
          fullUrl: CHILD,
          resource: { resourceType: 'Patient', gender: 'female' },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: { resourceType: 'Patient', id: 'tx-put', gender: 'male' },
          request: { method: 'PUT', url: 'Patient/tx-put' },
        },
      ],
    });
    assert.equal(status, 200);
    assert.equal(body.type, 'transaction-response');
    assert.deepEqual(
      body.entry.map((e: Json) => e.response.status),
      ['201', '201', '200'],
    );
    const observation = body.entry[0].resource;
    const patient = body.entry[1].resource;
    assert.equal(observation.subject.reference, `Patient/${patient.id}`);
    assert.equal(body.entry[1].response.etag, 'W/"1"');
    const read = await get(`${sandbox.baseUrl}/Observation/${observation.id}`);
    assert.equal(read.body.subject.reference, `Patient/${patient.id}`);
    assert.equal((await get(`${sandbox.baseUrl}/Patient/tx-put`)).status, 200);
  });

  it('rolls a failed transaction back completely', async () => {
    await sandbox.upsert({ resourceType: 'Patient', id: 'tx-guarded', gender: 'female' });
    const { status, body } = await post(sandbox.baseUrl, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: MOTHER,
          resource: { resourceType: 'Patient', identifier: [{ system: 'urn:rollback', value: '1' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: { resourceType: 'Patient', id: 'tx-guarded', gender: 'male' },
          request: { method: 'PUT', url: 'Patient/tx-guarded', ifMatch: 'W/"7"' },
        },
      ],
    });
    assert.equal(status, 412);
    assert.equal(body.resourceType, 'OperationOutcome');
    const created = await get(`${sandbox.baseUrl}/Patient?identifier=urn:rollback|1`);
    assert.equal(created.body.total, 0);
    const guarded = await get(`${sandbox.baseUrl}/Patient/tx-guarded`);
    assert.equal(guarded.body.gender, 'female');
    assert.equal(guarded.body.meta.versionId, '1');
  });

  it('runs a batch entry by entry: one failure does not stop the others', async () => {
    const { status, body } = await post(sandbox.baseUrl, {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', id: 'batch-ok' }, request: { method: 'PUT', url: 'Patient/batch-ok' } },
        { request: { method: 'GET', url: 'Patient/batch-missing' } },
        { request: { method: 'GET', url: 'Patient?_id=batch-ok' } },
      ],
    });
    assert.equal(status, 200);
    assert.equal(body.type, 'batch-response');
    assert.deepEqual(
      body.entry.map((e: Json) => e.response.status),
      ['200', '404', '200'],
    );
    assert.equal(body.entry[2].resource.total, 1);
  });
});

/** A BFDR-like document: urn:uuid and absolute fullUrls, references to both, and no ids on some entries. */
function birthDocument(): Json {
  return {
    resourceType: 'Bundle',
    type: 'document',
    entry: [
      {
        fullUrl: 'urn:uuid:c0c0c0c0-0000-4000-8000-000000000001',
        resource: {
          resourceType: 'Composition',
          status: 'final',
          type: { coding: [{ system: 'http://loinc.org', code: '68998-4' }] },
          subject: { reference: CHILD },
          title: 'Birth report',
          date: '2025-01-01',
          author: [{ reference: 'http://emr.example.org/fhir/Practitioner/midwife-7' }],
        },
      },
      { fullUrl: CHILD, resource: { resourceType: 'Patient', gender: 'female', birthDate: '2025-01-01' } },
      { fullUrl: MOTHER, resource: { resourceType: 'Patient', gender: 'female' } },
      {
        fullUrl: 'http://emr.example.org/fhir/Practitioner/midwife-7',
        resource: { resourceType: 'Practitioner' },
      },
      {
        fullUrl: 'urn:uuid:c0c0c0c0-0000-4000-8000-000000000002',
        resource: {
          resourceType: 'RelatedPerson',
          id: 'mother-of-child',
          patient: { reference: CHILD },
          extension: [{ url: 'http://example.org/mother-patient', valueReference: { reference: MOTHER } }],
        },
      },
    ],
  };
}

describe('FHIR sandbox seeding', () => {
  it('seeds from an array: resources keep their ids, bundles are unpacked and their references rewritten', async () => {
    const seed = [
      { resourceType: 'Organization', id: 'hospital-1', name: 'Ibombo District Hospital' },
      {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001',
            resource: {
              resourceType: 'Location',
              name: 'Ward 3',
              managingOrganization: { reference: 'Organization/hospital-1' },
            },
            request: { method: 'POST', url: 'Location' },
          },
        ],
      },
      birthDocument(),
    ];
    const before = JSON.stringify(seed);
    const sandbox = await startFhirSandbox({ port: 0, seed });
    try {
      assert.equal(JSON.stringify(seed), before, 'the seed array is not mutated');
      assert.equal((await get(`${sandbox.baseUrl}/Organization/hospital-1`)).body.meta.versionId, '1');
      const ward = await get(`${sandbox.baseUrl}/Location/aaaaaaaa-0000-4000-8000-000000000001`);
      assert.equal(ward.body.managingOrganization.reference, 'Organization/hospital-1');
      const childId = CHILD.slice('urn:uuid:'.length);
      const motherId = MOTHER.slice('urn:uuid:'.length);
      const composition = await get(`${sandbox.baseUrl}/Composition?subject=Patient/${childId}`);
      assert.equal(composition.body.total, 1);
      assert.equal(composition.body.entry[0].resource.author[0].reference, 'Practitioner/midwife-7');
      assert.equal((await get(`${sandbox.baseUrl}/Practitioner/midwife-7`)).status, 200);
      const rp = await get(`${sandbox.baseUrl}/RelatedPerson/mother-of-child`);
      assert.equal(rp.body.patient.reference, `Patient/${childId}`);
      assert.equal(rp.body.extension[0].valueReference.reference, `Patient/${motherId}`);
      assert.equal((await get(`${sandbox.baseUrl}/Bundle?_count=1`)).body.total, 0, 'bundles are not stored whole');
    } finally {
      await sandbox.close();
    }
  });

  it('seeds from a directory of JSON files, nested folders included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fhir-seed-'));
    try {
      mkdirSync(join(dir, 'births'));
      writeFileSync(join(dir, 'births', 'birth-1.json'), JSON.stringify(birthDocument()));
      writeFileSync(join(dir, 'org.json'), JSON.stringify({ resourceType: 'Organization', id: 'org-dir' }));
      writeFileSync(join(dir, 'README.txt'), 'not json, ignored');
      const sandbox = await startFhirSandbox({ port: 0, seed: dir });
      try {
        assert.equal((await get(`${sandbox.baseUrl}/Organization/org-dir`)).status, 200);
        assert.equal((await get(`${sandbox.baseUrl}/Patient`)).body.total, 2);
      } finally {
        await sandbox.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a seed item that is not a FHIR resource, naming it', async () => {
    await assert.rejects(startFhirSandbox({ port: 0, seed: [{ id: 'x' }] }), /seed item 0 is not a FHIR resource/);
  });
});
