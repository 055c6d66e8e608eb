// `opencrvs-bridge subscriptions`: the Subscriptions it posts land in a real FHIR server once (re-running
// adds none), and what they say (endpoint path, header, signing secret, payload) gets a birth through the
// receiver when a server sends notifications the way those Subscriptions ask, in each dialect.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Subscription } from '@medplum/fhirtypes';
import { stringify } from 'yaml';
import type { NotifyStyle } from '../../src/sandbox/fhir/notify-styles.js';
import {
  MEDPLUM_SECRET_EXTENSION,
  receiverEndpoint,
  type SubscriptionStyle,
  subscriptionBundle,
} from '../../src/sources/fhir/subscriptions.js';
import { runCli } from './helpers/bridge-cli.js';
import { type Simulators, SOURCE_ID, startHarness, startSimulators } from './helpers/bridge-harness.js';

const SECRET = 'subscription-cli-secret-0123';
const HMAC = 'subscription-cli-signing-secret';

async function subscriptions(s: Simulators): Promise<Subscription[]> {
  const res = await fetch(`${s.fhir.baseUrl}/Subscription?_count=100`);
  const bundle = (await res.json()) as Bundle<Subscription>;
  return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
}

describe('opencrvs-bridge subscriptions', () => {
  let s: Simulators;
  let config: string;
  before(async () => {
    s = await startSimulators();
    config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject({ subscription: { secret: SECRET } })));
  });
  after(async () => {
    await s?.close();
  });

  it('prints the Bundle with the secret as a placeholder', async () => {
    const run = await runCli(['subscriptions', '--config', config, '--bridge-url', 'https://bridge.example.org']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes(SECRET) && !run.stderr.includes(SECRET), 'the secret is never printed');
    const bundle = JSON.parse(run.stdout) as Bundle<Subscription>;
    const headers = bundle.entry?.map((e) => e.resource?.channel.header?.[0]);
    // One per type the poller reads: none for the v1 Task, which the mappings find only by its Composition
    // (its notifications would name no birth or death to map again).
    assert.deepEqual(
      bundle.entry?.map((e) => e.resource?.criteria),
      ['Composition?', 'Encounter?', 'Observation?', 'Patient?', 'RelatedPerson?'],
    );
    for (const header of headers ?? [])
      assert.equal(header, `Authorization: Bearer <sources[${SOURCE_ID}].subscription.secret>`);
    assert.match(run.stderr, /placeholders/);
    assert.doesNotMatch(run.stderr, /plain http/, 'https: no warning');
  });

  it('warns, without refusing, of a plain-http --bridge-url the EMR would send the secret to in clear', async () => {
    const run = await runCli(['subscriptions', '--config', config, '--bridge-url', 'http://bridge.example.org']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /^warning: --bridge-url is plain http: .* in clear; give the bridge's https:\/\/ address/m,
    );
    assert.ok(!run.stderr.includes(SECRET), 'the secret is not printed');
    const bundle = JSON.parse(run.stdout) as Bundle<Subscription>;
    assert.equal(
      bundle.entry?.[0]?.resource?.channel.endpoint,
      `http://bridge.example.org/fhir-subscription/${SOURCE_ID}`,
    );
  });

  it('refuses a --bridge-url that already holds the receiver path, which would come twice', async () => {
    const url = `https://bridge.example.org/fhir-subscription/${SOURCE_ID}`;
    const run = await runCli(['subscriptions', '--config', config, '--bridge-url', url]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /without \/fhir-subscription\/… .*e\.g\. https:\/\/bridge\.example\.org$/m);
  });

  it('posts them with --apply, once: a second run finds them there', async () => {
    const args = ['subscriptions', '--config', config, '--bridge-url', 'https://bridge.example.org', '--apply'];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(!first.stdout.includes(SECRET), 'the secret is never printed');
    const stored = await subscriptions(s);
    const types = stored.map((sub) => sub.criteria).sort();
    assert.ok(types.includes('Patient?') && types.includes('Encounter?'), types.join(', '));
    assert.equal((first.stdout.match(/ created$/gm) ?? []).length, stored.length);
    for (const sub of stored) {
      assert.equal(sub.channel.endpoint, `https://bridge.example.org/fhir-subscription/${SOURCE_ID}`);
      assert.deepEqual(sub.channel.header, [`Authorization: Bearer ${SECRET}`]);
    }

    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal((second.stdout.match(/ already there$/gm) ?? []).length, stored.length, second.stdout);
    assert.equal((await subscriptions(s)).length, stored.length, 'no duplicate subscriptions');
  });

  it('refuses a style the receiver would turn away, with exit code 2', async () => {
    const signed = join(s.dir, 'signed.yaml');
    writeFileSync(signed, stringify(s.configObject({ subscription: { secret: SECRET, hmacSecret: HMAC } })));
    const run = await runCli([
      'subscriptions',
      '--config',
      signed,
      '--bridge-url',
      'https://b.example',
      '--style',
      'hapi-empty',
    ]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /sends no X-Signature/);
    const unknown = await runCli([
      'subscriptions',
      '--config',
      config,
      '--bridge-url',
      'https://b.example',
      '--source',
      'nope',
    ]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no source "nope"/);
  });
});

/**
 * What a server does with the Subscription: every channel.header line becomes a header; Medplum signs
 * with the secret extension and POSTs the resource; HAPI PUTs the resource when a payload is asked for,
 * and POSTs an empty body when not.
 */
function serverSide(
  sub: Subscription,
  style: SubscriptionStyle,
): { style: NotifyStyle; headers: Record<string, string>; secret?: string } {
  const headers = Object.fromEntries(
    (sub.channel.header ?? []).map((line) => [
      line.slice(0, line.indexOf(':')).trim(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  const secret = sub.extension?.find((e) => e.url === MEDPLUM_SECRET_EXTENSION)?.valueString;
  const notifyStyle: NotifyStyle =
    style === 'medplum' ? 'medplum' : sub.channel.payload ? 'hapi-payload' : 'hapi-empty';
  return { style: notifyStyle, headers, ...(secret ? { secret } : {}) };
}

describe('notifications sent as the generated Subscriptions ask', () => {
  const cases: Array<{ style: SubscriptionStyle; secrets: { secret: string; hmacSecret?: string } }> = [
    { style: 'hapi-empty', secrets: { secret: SECRET } },
    { style: 'hapi-payload', secrets: { secret: SECRET } },
    { style: 'medplum', secrets: { secret: SECRET, hmacSecret: HMAC } },
  ];
  for (const { style, secrets } of cases) {
    it(`${style}: the receiver accepts them and the birth is delivered`, async () => {
      const bundle = subscriptionBundle({
        sourceId: SOURCE_ID,
        bridgeUrl: 'http://bridge',
        types: ['Patient'],
        style,
        secrets,
      });
      const patient = bundle.entry?.[0]?.resource;
      assert.ok(patient);
      const h = await startHarness({
        notify: serverSide(patient, style),
        subscription: secrets,
        poll: { enabled: false },
      });
      try {
        // The endpoint the Subscription names is where this receiver listens.
        assert.equal(receiverEndpoint(h.bridgeUrl, SOURCE_ID), h.receiverUrl);
        await h.writeBirths(0, 1);
        // waitForEvents returns once the event exists: its NOTIFY may still be on the way.
        await h.waitFor('the birth notified', async () => {
          const events = await h.sim.control.events();
          return (
            events.length === 1 &&
            events[0]?.actions.some((a) => a.type === 'NOTIFY' && a.status === 'Accepted') === true
          );
        });
      } finally {
        await h.close();
      }
    });
  }
});
