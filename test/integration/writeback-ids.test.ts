// A ledger row's references become the address of a credentialed write: `<base>/<Type>/<id>`. An id the
// FHIR id rule refuses (the subscription receiver's: isFhirId), `.` and `..` above all, which a URL
// resolves to the base or its parent, is refused by the write-back for good, before any request. Against
// the FHIR sandbox and the DHIS2 simulator behind the fault proxy, which records every request.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import type { SourceSettings } from '../../src/config/types.js';
import type { Dhis2Client } from '../../src/sources/dhis2/client.js';
import type { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { Dhis2WriteBack, FhirWriteBack, WriteBackError, type WriteBackJob } from '../../src/sources/writeback/index.js';
import { splitRef } from '../../src/sources/writeback/types.js';
import { type Dhis2BehindProxy, startDhis2BehindProxy } from './helpers/dhis2-proxy.js';
import type { FaultProxy } from './helpers/fault-proxy.js';
import { type FhirBehindProxy, startFhirBehindProxy } from './helpers/fhir-proxy.js';

const BAD_IDS = ['..', '.', '', 'a/b', '../Patient/x', `${'x'.repeat(65)}`];

function job(subjectKey: string, sourceRef: string): WriteBackJob {
  return {
    rowId: 1,
    sourceId: 'src',
    eventType: 'birth',
    subjectKey,
    sourceRef,
    trackingId: 'TRKIDS01',
    eventId: null,
  };
}

async function refusedForGood(write: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(
    write,
    (err: unknown) => err instanceof WriteBackError && err.permanent,
    `${what}: refused for good, not retried`,
  );
}

describe('write-back source references', () => {
  it('splitRef takes a type and a FHIR id, and nothing else', () => {
    assert.deepEqual(splitRef('Patient/a.b-1'), { type: 'Patient', id: 'a.b-1' });
    assert.deepEqual(splitRef('TrackedEntity/Tk0000000001'), { type: 'TrackedEntity', id: 'Tk0000000001' });
    assert.deepEqual(splitRef('Patient/..a'), { type: 'Patient', id: '..a' }, 'dots inside an id are FHIR');
    for (const id of BAD_IDS) assert.equal(splitRef(`Patient/${id}`), undefined, JSON.stringify(id));
    assert.equal(splitRef('patient/1'), undefined);
  });
});

describe('FHIR write-back of an id that names no resource', () => {
  let setup: FhirBehindProxy;
  let proxy: FaultProxy;
  let client: FhirSourceClient;
  let source: SourceSettings;
  let base: string;

  before(async () => {
    setup = await startFhirBehindProxy({
      seed: [{ resourceType: 'Patient', id: 'ids-1' } as Resource],
      timeoutMs: 5000,
      source: { id: 'src', auth: { type: 'bearer', token: 'emr-write-token' }, writeBack: {} },
      client: { attempts: 1 },
    });
    ({ proxy, client, source, path: base } = setup);
    assert.ok(source.writeBack);
  });
  after(async () => {
    await setup?.close();
  });
  beforeEach(() => {
    proxy.seen.length = 0;
  });

  const target = (resource: 'subject' | 'trigger') => {
    assert.ok(source.writeBack);
    return new FhirWriteBack(client, { ...source.writeBack, resource });
  };

  it('writes a good id on <base>/Patient/<id> (the proxy sees the write)', async () => {
    assert.equal(await target('subject').write(job('Patient/ids-1', 'Patient/ids-1')), 'written');
    assert.deepEqual(
      proxy.seen.map((seen) => `${seen.method} ${seen.url.replace(base, '<base>')}`),
      ['GET <base>/Patient/ids-1', 'PUT <base>/Patient/ids-1'],
    );
  });

  it('refuses `..` and every other bad id in the subject or the trigger for good, sending nothing', async () => {
    for (const id of BAD_IDS) {
      await refusedForGood(target('subject').write(job(`Patient/${id}`, 'Patient/ids-1')), `subject ${id}`);
      await refusedForGood(target('trigger').write(job('Patient/ids-1', `Encounter/${id}`)), `trigger ${id}`);
    }
    assert.deepEqual(proxy.seen, [], 'no request reached the EMR');
  });
});

describe('DHIS2 write-back of a uid that names no record', () => {
  let dhis2: Dhis2BehindProxy;
  let proxy: FaultProxy;
  let client: Dhis2Client;
  let source: SourceSettings;

  before(async () => {
    dhis2 = await startDhis2BehindProxy({
      source: { writeBack: { attribute: 'w75KJ2mc4zz' } },
      client: { attempts: 1 },
    });
    ({ proxy, client, source } = dhis2);
    assert.ok(source.writeBack);
  });
  after(async () => {
    await dhis2?.close();
  });

  it('refuses `..` and every other bad uid for good, sending nothing', async () => {
    assert.ok(source.writeBack);
    const attribute = new Dhis2WriteBack(client, source.writeBack, 'IpHINAT79UW');
    const dataValue = new Dhis2WriteBack(
      client,
      { ...source.writeBack, attribute: undefined, dataElement: 'uf3svrmp8Oj', programStage: 'A03MvHHogjR' },
      'IpHINAT79UW',
    );
    for (const id of BAD_IDS) {
      await refusedForGood(attribute.write(job(`TrackedEntity/${id}`, 'Event/Ev000000001')), `attribute ${id}`);
      // The trigger event's uid is bad: the stage's event is looked for under the (bad) tracked entity.
      await refusedForGood(dataValue.write(job(`TrackedEntity/${id}`, `Event/${id}`)), `data value ${id}`);
    }
    assert.deepEqual(proxy.seen, [], 'no request reached DHIS2');
  });

  it('refuses a FHIR id that is no DHIS2 uid for good too (the client refuses it), sending nothing', async () => {
    assert.ok(source.writeBack);
    const attribute = new Dhis2WriteBack(client, source.writeBack, 'IpHINAT79UW');
    const dataValue = new Dhis2WriteBack(
      client,
      { ...source.writeBack, attribute: undefined, dataElement: 'uf3svrmp8Oj' },
      'IpHINAT79UW',
    );
    for (const id of ['a.b-1234567', 'Tk0000000001', '1abcdefghij', '..a']) {
      assert.ok(splitRef(`TrackedEntity/${id}`), `${id} is a FHIR id`);
      await refusedForGood(attribute.write(job(`TrackedEntity/${id}`, 'Event/Ev000000001')), `attribute ${id}`);
      await refusedForGood(dataValue.write(job('TrackedEntity/Tk000000001', `Event/${id}`)), `data value ${id}`);
    }
    assert.deepEqual(proxy.seen, [], 'no request reached DHIS2');
  });
});
