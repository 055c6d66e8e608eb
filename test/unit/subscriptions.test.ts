// The Subscription resources `opencrvs-bridge subscriptions` builds, per server dialect. The dialects are
// from the servers' sources: HAPI's SubscriptionValidatingInterceptor refuses a criteria without '?';
// Medplum's rest-hook worker reads the HMAC secret from its subscription-secret extension and splits
// each channel.header at ':'.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clearTextBridgeUrlWarning,
  MEDPLUM_SECRET_EXTENSION,
  receiverEndpoint,
  type SubscriptionPlan,
  SubscriptionPlanError,
  subscriptionBundle,
} from '../../src/sources/fhir/subscriptions.js';

const plan = (over: Partial<SubscriptionPlan> = {}): SubscriptionPlan => ({
  sourceId: 'emr',
  bridgeUrl: 'https://bridge.example.org/proxy/',
  types: ['Encounter', 'Patient'],
  style: 'hapi-payload',
  secrets: { secret: 'shared-secret' },
  ...over,
});

describe('subscription resources', () => {
  it('points one rest-hook per watched type at the receiver, with the bearer secret as a header', () => {
    const bundle = subscriptionBundle(plan());
    assert.equal(bundle.type, 'transaction');
    const endpoint = 'https://bridge.example.org/proxy/fhir-subscription/emr';
    assert.equal(receiverEndpoint('https://bridge.example.org/proxy/', 'emr'), endpoint);
    assert.deepEqual(
      bundle.entry?.map((e) => [e.resource?.criteria, e.resource?.status, e.resource?.channel]),
      ['Encounter?', 'Patient?'].map((criteria) => [
        criteria,
        'requested',
        {
          type: 'rest-hook',
          endpoint,
          payload: 'application/fhir+json',
          header: ['Authorization: Bearer shared-secret'],
        },
      ]),
    );
    // Conditional creates on endpoint and criteria: applied twice, still one per type.
    assert.deepEqual(bundle.entry?.[1]?.request, {
      method: 'POST',
      url: 'Subscription',
      ifNoneExist: `url=${encodeURIComponent(endpoint)}&criteria=Patient%3F`,
    });
  });

  it('sends no payload in the HAPI empty style, and asks Medplum for active, signed subscriptions', () => {
    const empty = subscriptionBundle(plan({ style: 'hapi-empty' })).entry?.[0]?.resource;
    assert.equal(empty?.channel.payload, undefined);
    const medplum = subscriptionBundle(
      plan({ style: 'medplum', secrets: { secret: 'shared-secret', hmacSecret: 'signing-secret' } }),
    ).entry?.[0]?.resource;
    assert.equal(medplum?.criteria, 'Encounter');
    assert.equal(medplum?.status, 'active');
    assert.deepEqual(medplum?.extension, [{ url: MEDPLUM_SECRET_EXTENSION, valueString: 'signing-secret' }]);
    const open = subscriptionBundle(plan({ secrets: {} })).entry?.[0]?.resource;
    assert.equal(open?.channel.header, undefined, 'no secret configured, no header');
  });

  it('refuses what the receiver would turn away', () => {
    assert.throws(
      () => subscriptionBundle(plan({ style: 'hapi-payload', secrets: { hmacSecret: 'signing-secret' } })),
      (err: unknown) => err instanceof SubscriptionPlanError && /sends no X-Signature/.test(err.message),
    );
    assert.throws(
      () => subscriptionBundle(plan({ style: 'medplum', secrets: { secret: 'user:password' } })),
      /Medplum cuts its headers/,
    );
    assert.throws(() => subscriptionBundle(plan({ types: [] })), /watch no resource type/);
  });

  it('warns of a bridge URL the EMR would send its secret to in clear, not of one on loopback or https', () => {
    for (const url of ['http://bridge.example.org', 'http://10.0.0.5:8080/proxy', 'HTTP://bridge.svc.cluster.local'])
      assert.match(clearTextBridgeUrlWarning(url) ?? '', /plain http: .* bearer secret .* in clear/, url);
    assert.match(clearTextBridgeUrlWarning('http://bridge.example.org:8080') ?? '', / to bridge\.example\.org:8080,/);
    for (const url of [
      'https://bridge.example.org',
      'http://127.0.0.1:8080',
      'http://localhost:8080/',
      'http://[::1]:8080',
      'http://bridge.localhost',
    ])
      assert.equal(clearTextBridgeUrlWarning(url), undefined, url);
  });
});
