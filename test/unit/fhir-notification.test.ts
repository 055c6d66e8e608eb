import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  authenticateNotification,
  NotificationError,
  parseNotification,
  relativeRef,
} from '../../src/sources/fhir/notification.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/subscriptions/${name}`, import.meta.url));

function refusal(fn: () => unknown): NotificationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof NotificationError) return err;
    throw err;
  }
  assert.fail('expected a NotificationError');
}

describe('subscription notifications', () => {
  it('reads the focus and event number of a backport id-only notification (HL7 example)', () => {
    const parsed = parseNotification({ method: 'POST', rawBody: fixture('r4-backport-notification-id-only.json') });
    assert.equal(parsed.kind, 'event');
    if (parsed.kind !== 'event') return;
    assert.deepEqual(parsed.refs, ['Encounter/86009987-eabe-42bf-8c02-b112b18cb616']);
    assert.deepEqual(parsed.eventNumbers, [2]);
    assert.equal(parsed.eventsSinceStart, 2);
    assert.equal(parsed.subscription, 'Subscription/admission', 'event numbers count per subscription');
  });

  it('recognises a backport handshake (HL7 example)', () => {
    const parsed = parseNotification({ method: 'POST', rawBody: fixture('r4-backport-notification-handshake.json') });
    assert.equal(parsed.kind, 'handshake');
  });

  it('keeps the subscription and event number of a backport notification with an empty payload', () => {
    const bundle = JSON.parse(fixture('r4-backport-notification-id-only.json').toString('utf8'));
    bundle.entry = bundle.entry.slice(0, 1); // the status only: no focus, no resource entries
    for (const p of bundle.entry[0].resource.parameter)
      if (p.name === 'notification-event') p.part = p.part.filter((x: { name: string }) => x.name !== 'focus');
    const parsed = parseNotification({ method: 'POST', rawBody: Buffer.from(JSON.stringify(bundle)) });
    assert.equal(parsed.kind, 'ping');
    assert.ok(parsed.kind === 'ping');
    assert.deepEqual([parsed.subscription, parsed.eventNumbers], ['Subscription/admission', [2]]);
  });

  it('reads an R5 subscription-notification Bundle like the backport one, not as a resource', () => {
    const r5 = {
      resourceType: 'Bundle',
      id: 'n1',
      type: 'subscription-notification',
      entry: [
        {
          resource: {
            resourceType: 'SubscriptionStatus',
            type: 'event-notification',
            eventsSinceSubscriptionStart: 7,
            subscription: { reference: 'https://emr.example/fhir/Subscription/births' },
            notificationEvent: [{ eventNumber: 7, focus: { reference: 'https://emr.example/fhir/Patient/p7' } }],
          },
        },
      ],
    };
    const parsed = parseNotification({ method: 'POST', rawBody: Buffer.from(JSON.stringify(r5)) });
    assert.ok(parsed.kind === 'event', JSON.stringify(parsed));
    assert.deepEqual(
      [parsed.refs, parsed.eventNumbers, parsed.subscription],
      [['Patient/p7'], [7], 'Subscription/births'],
    );
  });

  it('keeps only a Subscription reference as the numbering, and only Type/id resources as refs', () => {
    const bundle = (subscription: string, resource: Record<string, unknown>) => ({
      resourceType: 'Bundle',
      type: 'subscription-notification',
      entry: [
        {
          resource: {
            resourceType: 'SubscriptionStatus',
            type: 'event-notification',
            subscription: { reference: subscription },
            notificationEvent: [{ eventNumber: 3 }],
          },
        },
        { resource },
      ],
    });
    const odd = parseNotification({
      method: 'POST',
      rawBody: Buffer.from(JSON.stringify(bundle('Banda Ruth 1987-07-23', { resourceType: 'Patient', id: 'p1' }))),
    });
    assert.ok(odd.kind === 'event');
    assert.equal(odd.subscription, undefined, 'free text is not kept (it would be logged and stored)');
    assert.deepEqual(odd.refs, ['Patient/p1']);
    const hostile = parseNotification({
      method: 'POST',
      rawBody: Buffer.from(
        JSON.stringify(bundle('Subscription/s1', { resourceType: 'http:\\\\127.0.0.1:9\\steal', id: '1' })),
      ),
    });
    assert.equal(hostile.kind, 'ping', 'no resource to read: a catch-up poll instead');
  });

  it('accepts the DSTU2-era media type application/json+fhir', () => {
    const parsed = parseNotification({
      method: 'POST',
      rawBody: fixture('r4-backport-notification-id-only.json'),
      contentType: 'application/json+fhir; charset=UTF-8',
    });
    assert.equal(parsed.kind, 'event');
  });

  it('treats an empty POST as a ping (HAPI classic without payload)', () => {
    assert.deepEqual(parseNotification({ method: 'POST', rawBody: Buffer.alloc(0) }), {
      kind: 'ping',
      style: 'hapi-empty',
    });
  });

  it('takes the resource from the path for HAPI classic PUT and DELETE', () => {
    const put = parseNotification({
      method: 'PUT',
      pathRef: { type: 'Patient', id: 'p1' },
      rawBody: Buffer.from('{}'),
    });
    assert.deepEqual(put, { kind: 'event', style: 'hapi-payload', refs: ['Patient/p1'] });
    const del = parseNotification({
      method: 'DELETE',
      pathRef: { type: 'Patient', id: 'p1' },
      rawBody: Buffer.alloc(0),
    });
    assert.equal(del.kind === 'event' && del.deleted, true);
  });

  it('reads a posted resource (Medplum style) and an empty object as a ping', () => {
    const body = Buffer.from(JSON.stringify({ resourceType: 'Patient', id: 'abc' }));
    assert.deepEqual(parseNotification({ method: 'POST', rawBody: body, contentType: 'application/fhir+json' }), {
      kind: 'event',
      style: 'resource',
      refs: ['Patient/abc'],
    });
    assert.equal(parseNotification({ method: 'POST', rawBody: Buffer.from('{}') }).kind, 'ping');
  });

  it('reads a Medplum delete from X-Medplum-Deleted-Resource, ignores one naming no resource, refuses a bad id', () => {
    const empty = Buffer.from('{}');
    assert.deepEqual(parseNotification({ method: 'POST', rawBody: empty, deletedResource: 'Patient/abc' }), {
      kind: 'event',
      style: 'medplum-delete',
      refs: ['Patient/abc'],
      deleted: true,
    });
    for (const none of ['Patient', 'patient/abc', '../x', 'Patient/a/b']) {
      assert.equal(parseNotification({ method: 'POST', rawBody: empty, deletedResource: none }).kind, 'ping', none);
    }
    for (const bad of ['Patient/a b', 'Patient/..', 'Patient/.', 'Patient/']) {
      const refused = refusal(() => parseNotification({ method: 'POST', rawBody: empty, deletedResource: bad }));
      assert.deepEqual([refused.status, refused.code], [400, 'invalid'], bad);
    }
  });

  it('from a sender authenticated by X-Signature alone, refuses the path style and marks a Medplum delete unsigned', () => {
    const empty = Buffer.from('{}');
    for (const method of ['PUT', 'DELETE', 'POST']) {
      const refused = refusal(() =>
        parseNotification({ method, pathRef: { type: 'Patient', id: 'abc' }, rawBody: empty, signedBodyOnly: true }),
      );
      assert.deepEqual([refused.status, refused.code], [403, 'security'], method);
    }
    assert.deepEqual(
      parseNotification({ method: 'POST', rawBody: empty, deletedResource: 'Patient/abc', signedBodyOnly: true }),
      { kind: 'event', style: 'medplum-delete', refs: ['Patient/abc'], deleted: true, unsigned: true },
    );
    // A bearer secret (or none at all) authenticates the request, not only its body: as before.
    assert.equal(
      parseNotification({ method: 'PUT', pathRef: { type: 'Patient', id: 'abc' }, rawBody: empty }).kind,
      'event',
    );
  });

  it('refuses an id that is no FHIR id, `.` and `..` included, in every wire style', () => {
    const BAD_IDS = ['..', '.', '..%2F..%2Fadmin?x=1', 'a b', 'x'.repeat(65), ''];
    const refused = (input: Parameters<typeof parseNotification>[0], what: string) => {
      const err = refusal(() => parseNotification(input));
      assert.deepEqual([err.status, err.code], [400, 'invalid'], what);
      assert.match(err.message, /not a FHIR id|bad resource type or id/, what);
    };
    const json = (body: unknown) => Buffer.from(JSON.stringify(body));
    const backport = (focus: string, entry: Record<string, unknown> = {}) => ({
      resourceType: 'Bundle',
      type: 'history',
      entry: [
        {
          resource: {
            resourceType: 'SubscriptionStatus',
            type: 'event-notification',
            notificationEvent: [{ eventNumber: 1, focus: { reference: focus } }],
          },
        },
        entry,
      ],
    });
    const parametersStatus = (focus: string) => ({
      resourceType: 'Bundle',
      type: 'history',
      entry: [
        {
          resource: {
            resourceType: 'Parameters',
            parameter: [
              { name: 'type', valueCode: 'event-notification' },
              {
                name: 'notification-event',
                part: [
                  { name: 'event-number', valueString: '1' },
                  { name: 'focus', valueReference: { reference: focus } },
                ],
              },
            ],
          },
        },
      ],
    });
    for (const id of BAD_IDS) {
      const what = JSON.stringify(id);
      if (id !== '') {
        // An empty path segment never reaches the route: it is another path.
        refused({ method: 'PUT', pathRef: { type: 'Patient', id }, rawBody: Buffer.alloc(0) }, `path PUT ${what}`);
        refused(
          { method: 'DELETE', pathRef: { type: 'Patient', id }, rawBody: Buffer.alloc(0) },
          `path DELETE ${what}`,
        );
      }
      refused({ method: 'POST', rawBody: json({ resourceType: 'Patient', id }) }, `resource ${what}`);
      refused({ method: 'POST', rawBody: json(backport(`Patient/${id}`)) }, `backport focus ${what}`);
      refused({ method: 'POST', rawBody: json(backport(`https://emr/fhir/Patient/${id}/_history/2`)) }, `abs ${what}`);
      refused({ method: 'POST', rawBody: json(parametersStatus(`Patient/${id}`)) }, `parameters focus ${what}`);
      refused(
        { method: 'POST', rawBody: json(backport('Patient/ok', { fullUrl: `https://emr/fhir/Patient/${id}` })) },
        `entry fullUrl ${what}`,
      );
      refused(
        { method: 'POST', rawBody: json(backport('Patient/ok', { resource: { resourceType: 'Patient', id } })) },
        `entry resource ${what}`,
      );
    }
    assert.equal(relativeRef('Patient/..'), undefined);
    assert.equal(relativeRef('https://emr/fhir/Patient/./_history/1'), undefined);
    // Ids with dots are ids: only `.` and `..` alone are not.
    const dotted = parseNotification({
      method: 'POST',
      rawBody: json(backport('Patient/...', { fullUrl: 'Patient/a.b' })),
    });
    assert.ok(dotted.kind === 'event');
    assert.deepEqual(dotted.refs, ['Patient/...', 'Patient/a.b']);
    // A reference that names no resource is passed over, as before: the notification is a hint.
    const free = parseNotification({
      method: 'POST',
      rawBody: json(backport('urn:uuid:1234', { fullUrl: 'urn:uuid:5' })),
    });
    assert.equal(free.kind, 'ping');
  });

  it('refuses a type that is no FHIR R4 resource type, however shaped, in every wire style', () => {
    const json = (body: unknown) => Buffer.from(JSON.stringify(body));
    const backport = (focus: string, entry: Record<string, unknown> = {}) =>
      json({
        resourceType: 'Bundle',
        type: 'history',
        entry: [
          {
            resource: {
              resourceType: 'SubscriptionStatus',
              type: 'event-notification',
              notificationEvent: [{ eventNumber: 1, focus: { reference: focus } }],
            },
          },
          entry,
        ],
      });
    for (const type of ['Patients', 'Foo', `A${'a'.repeat(300_000)}`]) {
      const what = type.slice(0, 10);
      const inputs: Array<[string, Parameters<typeof parseNotification>[0]]> = [
        ['path PUT', { method: 'PUT', pathRef: { type, id: 'x' }, rawBody: Buffer.alloc(0) }],
        ['path DELETE', { method: 'DELETE', pathRef: { type, id: 'x' }, rawBody: Buffer.alloc(0) }],
        ['resource', { method: 'POST', rawBody: json({ resourceType: type, id: 'x' }) }],
        ['backport focus', { method: 'POST', rawBody: backport(`${type}/x`) }],
        ['absolute focus', { method: 'POST', rawBody: backport(`https://emr/fhir/${type}/x/_history/2`) }],
        [
          'entry fullUrl',
          { method: 'POST', rawBody: backport('Patient/ok', { fullUrl: `https://emr/fhir/${type}/x` }) },
        ],
        [
          'entry resource',
          { method: 'POST', rawBody: backport('Patient/ok', { resource: { resourceType: type, id: 'x' } }) },
        ],
        ['Medplum delete', { method: 'POST', rawBody: Buffer.from('{}'), deletedResource: `${type}/x` }],
      ];
      for (const [style, input] of inputs) {
        const err = refusal(() => parseNotification(input));
        assert.deepEqual([err.status, err.code], [400, 'invalid'], `${style} ${what}`);
        // The sender's text is not quoted back, whatever its length.
        assert.ok(!err.message.includes(type), `${style} ${what}`);
      }
      assert.equal(relativeRef(`${type}/x`), undefined, what);
    }
    // The R4 types pass, in every style.
    const parsed = parseNotification({
      method: 'POST',
      rawBody: backport('RelatedPerson/r1', { fullUrl: 'Encounter/e1' }),
    });
    assert.ok(parsed.kind === 'event');
    assert.deepEqual(parsed.refs, ['RelatedPerson/r1', 'Encounter/e1']);
  });

  it('refuses malformed JSON, arrays, non-FHIR bodies and other content types with 4xx', () => {
    assert.equal(refusal(() => parseNotification({ method: 'POST', rawBody: Buffer.from('{nope') })).status, 400);
    assert.equal(refusal(() => parseNotification({ method: 'POST', rawBody: Buffer.from('[1]') })).status, 400);
    assert.equal(refusal(() => parseNotification({ method: 'POST', rawBody: Buffer.from('{"a":1}') })).status, 400);
    const xml = refusal(() =>
      parseNotification({ method: 'POST', rawBody: Buffer.from('<x/>'), contentType: 'application/xml' }),
    );
    assert.equal(xml.status, 415);
    const badPath = refusal(() =>
      parseNotification({ method: 'PUT', pathRef: { type: 'patient', id: 'x' }, rawBody: Buffer.alloc(0) }),
    );
    assert.equal(badPath.status, 400);
  });

  it('normalises absolute and versioned references', () => {
    assert.equal(relativeRef('https://emr.example/fhir/Patient/1/_history/3'), 'Patient/1');
    assert.equal(relativeRef('Observation/x-1'), 'Observation/x-1');
    assert.equal(relativeRef('not a ref'), undefined);
  });

  it('accepts the right bearer secret and HMAC and refuses wrong or missing ones', () => {
    const body = Buffer.from('{"resourceType":"Patient","id":"1"}');
    const signature = createHmac('sha256', 'hmac-key').update(body).digest('hex');
    authenticateNotification(
      { secret: 's3cret', hmacSecret: 'hmac-key' },
      { authorization: 'Bearer s3cret', signature },
      body,
    );
    assert.equal(refusal(() => authenticateNotification({ secret: 's3cret' }, {}, body)).status, 401);
    assert.equal(
      refusal(() => authenticateNotification({ secret: 's3cret' }, { authorization: 'Bearer s3cre' }, body)).status,
      401,
    );
    const tampered = Buffer.from('{"resourceType":"Patient","id":"2"}');
    assert.equal(
      refusal(() => authenticateNotification({ hmacSecret: 'hmac-key' }, { signature }, tampered)).status,
      401,
    );
  });
});
