// A reference inside a record read from the EMR names the type the bridge reads it as: `<base>/<Type>?_id=…`
// (or `<base>/<Type>/<id>`), with the source's credentials. The shape alone (`^[A-Z][A-Za-z]+$`, any length)
// let `partOf.reference: "Aaaa…/x"` make the bridge ask `<base>/Aaaa…`; the receiver already holds
// notifications to the FHIR R4 resource types. A reference of any other type is read as nothing, without
// a request, as a `#contained` one is. Against the FHIR sandbox behind the fault proxy, which records
// every request.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { loadMappings, mapSubject } from '../../src/mapping/index.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { type FhirBehindProxy, startFhirBehindProxy } from './helpers/fhir-proxy.js';

// Long, but within what the proxy's HTTP server takes in a request line (16 kB), so a request would be seen.
const LONG_TYPE = `A${'a'.repeat(4_000)}`;
const NOT_R4 = [LONG_TYPE, 'TrackedEntity', 'Maternity'];

/** Demo birth `n`, its birth encounter part of `partOf` instead of the maternity encounter. */
function birthPartOf(n: number, partOf: string): Resource[] {
  return generateBirth(n).map((resource) =>
    resource.resourceType === 'Encounter' && resource.id === `demo-birth-${n}-birth`
      ? { ...resource, partOf: { reference: partOf } }
      : resource,
  );
}

describe('references of a type that is no FHIR R4 resource type (live FHIR source)', () => {
  let setup: FhirBehindProxy;
  const set = loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } });

  before(async () => {
    setup = await startFhirBehindProxy({
      timeoutMs: 5000,
      seed: [
        ...birthPartOf(0, 'Encounter/demo-birth-0-maternity'),
        ...NOT_R4.flatMap((type, i) => birthPartOf(i + 1, `${type}/demo-birth-${i + 1}-maternity`)),
      ],
    });
  });
  after(async () => {
    await setup?.close();
  });
  beforeEach(() => {
    setup.proxy.seen.length = 0;
  });

  const requested = () => setup.proxy.seen.map((request) => request.url);

  it('reads an R4 reference from a record (the maternity encounter the birth is part of)', async () => {
    const result = await mapSubject(set, 'birth.fhir', 'Patient/demo-birth-0-child', new CachingFetcher(setup.client));
    assert.equal(result.status, 'mapped');
    assert.ok(
      requested().some((url) => url.startsWith(`${setup.path}/Encounter`) && url.includes('demo-birth-0-maternity')),
      requested().join('\n'),
    );
  });

  it('asks the EMR nothing for a reference whose type is none, and maps the record without it', async () => {
    for (const [i, type] of NOT_R4.entries()) {
      setup.proxy.seen.length = 0;
      const n = i + 1;
      const fetcher = new CachingFetcher(setup.client);
      const result = await mapSubject(set, 'birth.fhir', `Patient/demo-birth-${n}-child`, fetcher);
      assert.equal(result.status, 'mapped', type.slice(0, 20));
      const asked = requested();
      assert.ok(asked.length > 0, 'the record itself was read');
      assert.deepEqual(
        asked
          .filter((url) => url.includes(type) || url.includes(`demo-birth-${n}-maternity`))
          .map((url) => url.slice(0, 60)),
        [],
        type.slice(0, 20),
      );
      // Read again through the fetcher itself (a prefetch, a notification): nothing, and still no request.
      assert.equal(await fetcher.read(type, `demo-birth-${n}-maternity`), undefined);
      assert.deepEqual(
        requested()
          .filter((url) => url.includes(type))
          .map((url) => url.slice(0, 60)),
        [],
      );
    }
  });
});
