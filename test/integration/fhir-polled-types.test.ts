// Which resource types a poll pass searches (`_sort=_lastUpdated`): the subject's and those a context search finds
// by the subject, not the OpenCRVS v1 Task the shipped mappings find by its Composition. A changed Task names
// no birth (MappingSet.subjectsFor), so each pass read every Task the EMR wrote (the bridge's own write-back
// Tasks too) for nothing. The Task is still read as context: the office it names reaches the record.
// Against the FHIR sandbox behind the fault proxy, which records every request.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { birthResources, startHarness } from './helpers/bridge-harness.js';
import { startFaultProxy } from './helpers/fault-proxy.js';

/** An OpenCRVS v1 birth notification as an EMR stores it: its resources with ids, `urn:uuid:` turned into `Type/id`. */
function v1NotificationResources(): Resource[] {
  const path = new URL('../fixtures/opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json', import.meta.url);
  const bundle = JSON.parse(readFileSync(path, 'utf8')) as { entry: Array<{ fullUrl: string; resource: Resource }> };
  const refs = new Map(bundle.entry.map((e) => [e.fullUrl, `${e.resource.resourceType}/${e.fullUrl.slice(9)}`]));
  let text = JSON.stringify(bundle.entry.map((e) => ({ ...e.resource, id: e.fullUrl.slice(9) })));
  for (const [from, to] of refs) text = text.replaceAll(`"${from}"`, `"${to}"`);
  return JSON.parse(text) as Resource[];
}

describe('FHIR polling: the resource types a pass searches', () => {
  const closing: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of closing.reverse()) await close();
  });

  it('searches the types that name a subject, not the Task; the Task is still read as context', async () => {
    const proxy = await startFaultProxy();
    closing.push(() => proxy.close());
    let path = '';
    const h = await startHarness({
      source: {
        baseUrl: (sandbox) => {
          proxy.target = sandbox;
          path = new URL(sandbox).pathname.replace(/\/+$/, '');
          return `${proxy.url}${path}`;
        },
      },
    });
    closing.push(() => h.close());
    const resources = v1NotificationResources();
    const task = resources.find((r) => r.resourceType === 'Task');
    assert.ok(task, 'the v1 notification holds a Task');
    for (const r of [...resources, ...birthResources(3)]) await h.fhir.upsert(r);

    await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    const requests = proxy.seen.map((s) => decodeURIComponent(s.url));
    const polled = new Set(
      requests
        .filter((url) => url.includes('_sort=_lastUpdated'))
        .map((url) => url.slice(path.length + 1).split('?')[0]),
    );
    assert.deepEqual([...polled].sort(), ['Composition', 'Encounter', 'Observation', 'Patient', 'RelatedPerson']);
    assert.ok(
      requests.some((url) => url.startsWith(`${path}/Task?`) && url.includes('focus=Composition/')),
      'the Task is searched by its Composition',
    );
    // What the Task alone names (regLastOffice, an office of another deployment) reached the row.
    const v1 = h.rows().find((r) => r.sourceRef.startsWith('Composition/'));
    assert.match(
      v1?.lastError?.message ?? '',
      /office 0be1dc9b-5c8b-4d20-a88c-08cafc71c99a, which the source record named/,
    );
    assert.equal(Object.hasOwn(h.bridge.sourceStatuses()[0]?.watermarks ?? {}, 'Task'), false, 'no Task watermark');
  });
});
