import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseSearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { matchesDatePrefix, parseDateRange } from '../../src/sandbox/fhir/date-range.js';
import { loadR4Definitions } from '../../src/sandbox/fhir/definitions.js';
import { buildNotification, type StyleContext } from '../../src/sandbox/fhir/notify-styles.js';
import { type ResourceChange, SandboxRepository } from '../../src/sandbox/fhir/repository.js';
import { searchRecords } from '../../src/sandbox/fhir/search.js';
import { unpackSeed } from '../../src/sandbox/fhir/seed.js';
import { SerialQueue } from '../../src/sandbox/fhir/serial-queue.js';

loadR4Definitions();

describe('FHIR search date values', () => {
  it('reads the precision of a date value as a range', () => {
    const range = (v: string) => {
      const r = parseDateRange(v);
      return [new Date(r.lo).toISOString(), new Date(r.hi).toISOString()];
    };
    assert.deepEqual(range('2024'), ['2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
    assert.deepEqual(range('2024-02'), ['2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
    assert.deepEqual(range('2024-12-31'), ['2024-12-31T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
    assert.deepEqual(range('2024-05-01T10:00'), ['2024-05-01T10:00:00.000Z', '2024-05-01T10:01:00.000Z']);
    assert.deepEqual(range('2024-05-01T10:00:05+02:00'), ['2024-05-01T08:00:05.000Z', '2024-05-01T08:00:06.000Z']);
    assert.deepEqual(range('2024-05-01T10:00:05.1234567Z'), ['2024-05-01T10:00:05.123Z', '2024-05-01T10:00:05.124Z']);
    assert.throws(() => parseDateRange('yesterday'), /Invalid date search value/);
  });

  it('compares an instant with a range by the FHIR prefix rules', () => {
    const day = parseDateRange('2024-05-01');
    const t = Date.parse('2024-05-01T12:00:00Z');
    assert.equal(matchesDatePrefix(t, 'eq', day), true);
    assert.equal(matchesDatePrefix(t, 'ge', day), true);
    assert.equal(matchesDatePrefix(t, 'gt', day), false);
    assert.equal(matchesDatePrefix(t, 'le', day), true);
    assert.equal(matchesDatePrefix(t, 'lt', day), false);
    assert.equal(matchesDatePrefix(t, 'ne', day), false);
    assert.equal(matchesDatePrefix(day.hi, 'gt', day), true);
  });
});

describe('FHIR sandbox seed unpacking', () => {
  it('takes ids from urn:uuid, absolute fullUrls and PUT urls, rewrites references, skips DELETE entries', () => {
    const input = [
      {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:11111111-2222-4333-8444-555555555555',
            resource: { resourceType: 'Patient' },
            request: { method: 'POST', url: 'Patient' },
          },
          {
            fullUrl: 'https://emr.example.org/fhir/Encounter/enc-9',
            resource: {
              resourceType: 'Encounter',
              subject: { reference: 'urn:uuid:11111111-2222-4333-8444-555555555555' },
            },
          },
          {
            resource: {
              resourceType: 'Observation',
              focus: [{ reference: 'https://emr.example.org/fhir/Encounter/enc-9' }],
            },
            request: { method: 'PUT', url: 'Observation/obs-3' },
          },
          { resource: { resourceType: 'Patient', id: 'gone' }, request: { method: 'DELETE', url: 'Patient/gone' } },
          { resource: { resourceType: 'Patient', subject: { reference: 'Patient/unrelated' } } },
        ],
      },
    ];
    const snapshot = JSON.stringify(input);
    // biome-ignore lint/suspicious/noExplicitAny: the test reads the unpacked JSON field by field
    const out = unpackSeed(input) as unknown as Record<string, any>[];
    assert.equal(JSON.stringify(input), snapshot);
    assert.deepEqual(out.map((r) => `${r.resourceType}/${r.id}`).slice(0, 3), [
      'Patient/11111111-2222-4333-8444-555555555555',
      'Encounter/enc-9',
      'Observation/obs-3',
    ]);
    assert.equal(out[1]?.subject.reference, 'Patient/11111111-2222-4333-8444-555555555555');
    assert.equal(out[2]?.focus[0].reference, 'Encounter/enc-9');
    assert.equal(out.length, 4);
    assert.match(String(out[3]?.id), /^[0-9a-f-]{36}$/);
    assert.equal(out[3]?.subject.reference, 'Patient/unrelated');
  });

  it('rejects items that are not resources', () => {
    assert.throws(() => unpackSeed(['text']), /seed item 0 is not a FHIR resource/);
    assert.throws(() => unpackSeed([{ resourceType: 'Patient', id: 7 }]), /non-string id/);
  });
});

describe('FHIR sandbox notification wire styles', () => {
  const ctx = (style: StyleContext['style']): StyleContext => ({
    url: 'http://receiver.example/hook/',
    style,
    secret: 'k',
    headers: { Authorization: 'Bearer t' },
    baseUrl: 'http://127.0.0.1:1/fhir',
    subscriptionId: 'sub-1',
  });
  const resource: Resource = { resourceType: 'Patient', id: 'p1', meta: { versionId: '2' } };
  const change = (interaction: ResourceChange['interaction']): ResourceChange => ({
    interaction,
    resourceType: 'Patient',
    id: 'p1',
    versionId: '2',
    lastUpdated: '2025-01-01T00:00:00.000Z',
    ...(interaction === 'delete' ? {} : { resource }),
  });

  it('signs the exact medplum body with HMAC-SHA256 and sends {} for a delete', () => {
    const update = buildNotification(ctx('medplum'), { kind: 'event', change: change('update'), eventNumber: 1 });
    assert.equal(update?.url, 'http://receiver.example/hook');
    assert.equal(
      update?.headers['X-Signature'],
      createHmac('sha256', 'k')
        .update(update?.body ?? '')
        .digest('hex'),
    );
    assert.equal(update?.headers.Authorization, 'Bearer t');
    const del = buildNotification(ctx('medplum'), { kind: 'event', change: change('delete'), eventNumber: 2 });
    assert.equal(del?.body, '{}');
    assert.equal(del?.headers['X-Medplum-Interaction'], 'delete');
  });

  it('sends nothing for hapi-empty deletes and no status messages outside the backport style', () => {
    assert.equal(
      buildNotification(ctx('hapi-empty'), { kind: 'event', change: change('delete'), eventNumber: 1 }),
      undefined,
    );
    assert.equal(buildNotification(ctx('medplum'), { kind: 'heartbeat', eventsSinceStart: 3 }), undefined);
    const put = buildNotification(ctx('hapi-payload'), { kind: 'event', change: change('create'), eventNumber: 1 });
    assert.equal(`${put?.method} ${put?.url}`, 'PUT http://receiver.example/hook/Patient/p1');
  });

  it('builds backport bundles with the parameters of the R4 backport status profile', () => {
    const n = buildNotification(ctx('backport-id-only'), { kind: 'event', change: change('update'), eventNumber: 7 });
    const bundle = JSON.parse(n?.body ?? '');
    const names = bundle.entry[0].resource.parameter.map((p: { name: string }) => p.name);
    assert.deepEqual(names, [
      'subscription',
      'topic',
      'status',
      'type',
      'events-since-subscription-start',
      'notification-event',
    ]);
    assert.equal(bundle.entry[0].request.url, 'http://127.0.0.1:1/fhir/Subscription/sub-1/$status');
    assert.deepEqual(bundle.entry[1].request, { method: 'PUT', url: 'Patient/p1' });
  });
});

describe('FHIR sandbox repository and keyset search', () => {
  it('pages in both directions over a frozen clock without repeats, through updates and deletes', async () => {
    const repo = new SandboxRepository(() => 1_700_000_000_000);
    for (let i = 0; i < 25; i++) await repo.updateResource({ resourceType: 'Patient', id: `p${i}` });
    await repo.updateResource({ resourceType: 'Patient', id: 'p3', gender: 'male' });
    await repo.deleteResource('Patient', 'p4');
    for (const sort of ['_lastUpdated', '-_lastUpdated']) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const query: Record<string, string> = { _sort: sort, _count: '7', ...(cursor ? { _cursor: cursor } : {}) };
        const result = searchRecords(repo, parseSearchRequest('Patient', query));
        assert.equal(result.total, 24);
        seen.push(...result.page.map((r) => r.resource.id));
        cursor = result.nextCursor;
      } while (cursor);
      assert.equal(seen.length, 24, sort);
      assert.equal(new Set(seen).size, 24, sort);
      assert.equal(sort === '_lastUpdated' ? seen.at(-1) : seen[0], 'p3', 'the updated one is newest');
    }
  });

  it('pages a selective filter (few matches among many resources) the same way in both directions', async () => {
    const repo = new SandboxRepository(() => 1_700_000_000_000);
    for (let i = 0; i < 400; i++) {
      const subject = { reference: i % 20 === 0 ? 'Patient/a' : `Patient/other-${i}` };
      await repo.updateResource({ resourceType: 'Observation', id: `o${i}`, status: 'final', code: {}, subject });
    }
    for (const sort of ['_lastUpdated', '-_lastUpdated']) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const query: Record<string, string> = { subject: 'Patient/a', _sort: sort, _count: '3' };
        if (cursor) query._cursor = cursor;
        const result = searchRecords(repo, parseSearchRequest('Observation', query));
        assert.equal(result.total, 20);
        seen.push(...result.page.map((r) => r.resource.id));
        cursor = result.nextCursor;
      } while (cursor);
      const expected = Array.from({ length: 20 }, (_, i) => `o${i * 20}`);
      assert.deepEqual(seen, sort === '_lastUpdated' ? expected : expected.reverse(), sort);
    }
  });

  it('announces writes as create, update and delete with their versions', async () => {
    const repo = new SandboxRepository();
    const changes: string[] = [];
    repo.onChange((c) => changes.push(`${c.interaction}:${c.versionId}`));
    await repo.createResource({ resourceType: 'Patient', id: 'a' });
    await repo.updateResource({ resourceType: 'Patient', id: 'a', gender: 'female' });
    await repo.deleteResource('Patient', 'a');
    assert.deepEqual(changes, ['create:1', 'update:2', 'delete:3']);
  });
});

describe('serial write queue', () => {
  it('runs tasks one at a time in order and carries on after a failure', async () => {
    const queue = new SerialQueue();
    const log: string[] = [];
    const task =
      (name: string, fail = false) =>
      async () => {
        log.push(`start ${name}`);
        await new Promise((resolve) => setImmediate(resolve));
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      };
    const results = await Promise.allSettled([queue.run(task('a')), queue.run(task('b', true)), queue.run(task('c'))]);
    assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
  });
});
