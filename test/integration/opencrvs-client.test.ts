// The production client against the real OpenCRVS simulator over HTTP: tokens, idempotency, the
// answers OpenCRVS gives for bad input and confirmation modes, and every injected fault.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { configFromObject } from '../../src/config/index.js';
import type { OpenCrvsSettings } from '../../src/config/types.js';
import { classifyFailure } from '../../src/delivery/errors.js';
import { checkRouting } from '../../src/doctor/opencrvs-checks.js';
import { createLogger } from '../../src/observability/logger.js';
import {
  createOpenCrvsClient,
  LocationResolver,
  type OpenCrvsClientDeps,
  OpenCrvsError,
} from '../../src/opencrvs/index.js';
import { OpenCrvsSandboxControl } from '../../src/sandbox/opencrvs/control.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';

type Simulator = Awaited<ReturnType<typeof startOpenCrvsSimulator>>;

const declaration = { 'child.name': { firstname: 'Jane', surname: 'Doe' }, 'child.dob': '2026-01-15' };

function settingsFor(sim: Simulator, overrides: Partial<OpenCrvsSettings> = {}): OpenCrvsSettings {
  return {
    tokenUrl: sim.tokenUrl,
    eventsUrl: sim.eventsUrl,
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    version: '2.0',
    country: 'farajaland',
    timeoutMs: 3000,
    tokenRenewBeforeSeconds: 60,
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<OpenCrvsError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OpenCrvsError) return err;
    throw err;
  }
  assert.fail('expected an OpenCrvsError');
}

function capturingLogger() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
  return { logger, lines };
}

describe('OpenCRVS client against the 2.0 simulator', () => {
  let sim: Simulator;
  let control: OpenCrvsSandboxControl;
  let office = '';

  const client = (overrides: Partial<OpenCrvsSettings> = {}, deps: OpenCrvsClientDeps = {}) =>
    createOpenCrvsClient(settingsFor(sim, overrides), deps);
  const tx = (label: string) => `${label}-${randomUUID()}`;
  const newEvent = (c = client()) =>
    c.createEvent({ type: 'birth', transactionId: tx('create'), createdAtLocation: office });
  const eventsInSim = async () => control.events();

  before(async () => {
    sim = await startOpenCrvsSimulator({ port: 0 });
    control = new OpenCrvsSandboxControl(sim.baseUrl);
    const found = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE');
    assert.ok(found, 'the simulator seeds at least one office');
    office = found.id;
  });

  after(async () => {
    await sim.close();
  });

  beforeEach(async () => {
    await control.reset();
  });

  describe('tokens', () => {
    it('caches the token and renews it before expiry, not before half its life, without a 401', async () => {
      await control.addClient({ clientId: 'short-lived', clientSecret: 'short-lived-secret', tokenTtlSeconds: 30 });
      const { logger, lines } = capturingLogger();
      // The bridge's clock is driven, not waited for: a loaded machine neither renews early nor late. OpenCRVS
      // holds the token to its own 30 s, far off on the real clock.
      const start = Date.now();
      let clock = start;
      const c = client(
        { clientId: 'short-lived', clientSecret: 'short-lived-secret', tokenRenewBeforeSeconds: 20 },
        { logger, now: () => clock },
      );
      await newEvent(c);
      await newEvent(c);
      assert.equal(c.tokenRenewals(), 1);
      // 20 s before expiry is 10 s into its life: too soon, a token is kept for half its life at least.
      clock = start + 12_000;
      await newEvent(c);
      assert.equal(c.tokenRenewals(), 1);
      // Half-way through (15 s) it is renewed, before OpenCRVS would refuse it.
      clock = start + 16_000;
      await newEvent(c);
      assert.equal(c.tokenRenewals(), 2);
      assert.equal(lines.filter((line) => line.includes('refused the token')).length, 0);
    });

    it('gets a new token once when OpenCRVS refuses the cached one', async () => {
      await control.addClient({ clientId: 'rotated', clientSecret: 'rotated-secret-1' });
      const c = client({ clientId: 'rotated', clientSecret: 'rotated-secret-1' });
      await newEvent(c);
      await control.removeClient('rotated');
      await control.addClient({ clientId: 'rotated', clientSecret: 'rotated-secret-1' });
      await newEvent(c);
      assert.equal(c.tokenRenewals(), 2);
    });

    it('a 401 from the events API that finds the rotated secret file ends the token refusal at once', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'opencrvs-client-rotation-'));
      const secretFile = join(dir, 'client-secret');
      const rotate = (value: string) => {
        writeFileSync(`${secretFile}.new`, `${value}\n`);
        renameSync(`${secretFile}.new`, secretFile);
      };
      try {
        rotate('rotating-secret-1');
        await control.addClient({ clientId: 'rotating', clientSecret: 'rotating-secret-1' });
        const { opencrvs } = configFromObject({
          opencrvs: {
            ...settingsFor(sim),
            clientId: 'rotating',
            clientSecret: undefined,
            clientSecretFile: secretFile,
          },
        });
        const c = createOpenCrvsClient(opencrvs);
        await c.checkToken();
        // A call made with that token, which OpenCRVS answers slowly.
        await control.configure({ faults: { delayMs: 1500, operations: ['locations'] } });
        const slow = c.listLocations({ externalId: 'no-such-office' });
        await sleep(200);
        // OpenCRVS replaces the client's secret (revoking its tokens) before the file has the new one: the
        // next call's 401 asks for a token with the old secret, refused, and not asked again for 30 s.
        await control.addClient({ clientId: 'rotating', clientSecret: 'rotating-secret-2' });
        const refused = await failure(newEvent(c));
        assert.deepEqual([refused.kind, refused.operation], ['unauthorized', 'token']);
        rotate('rotating-secret-2');
        await sleep(300); // past the 4-a-second bound on looks at the file after a refusal
        // The slow call's 401 (its token revoked) reads the new secret: it is asked with at once, whoever
        // read the file first, and the calls after it (a held queue's probe) are not refused meanwhile.
        assert.deepEqual(await slow, []);
        await control.configure({ faults: {} });
        await newEvent(c);
        await c.checkToken({ fresh: true });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('calls a revoked client an operator problem', async () => {
      await control.addClient({ clientId: 'revoked', clientSecret: 'revoked-secret-1' });
      const c = client({ clientId: 'revoked', clientSecret: 'revoked-secret-1' });
      await newEvent(c);
      await control.removeClient('revoked');
      const err = await failure(newEvent(c));
      assert.deepEqual([err.kind, err.classification], ['unauthorized', 'operator']);
      assert.equal(err.message.includes('revoked-secret-1'), false);
    });

    it('calls a missing notify scope an operator problem', async () => {
      await control.addClient({
        clientId: 'creator',
        clientSecret: 'creator-secret-1',
        scopes: ['type=record.create'],
      });
      const c = client({ clientId: 'creator', clientSecret: 'creator-secret-1' });
      const event = await newEvent(c);
      const err = await failure(
        c.notify({ eventId: event.id, transactionId: tx('notify'), createdAtLocation: office, declaration }),
      );
      assert.deepEqual([err.status, err.kind, err.classification], [403, 'forbidden', 'operator']);
    });

    it('reports the scopes of the token', async () => {
      const { scopes, expiresAt } = await client().checkToken();
      assert.ok(scopes.some((s) => s.includes('record.notify')));
      assert.ok(expiresAt > Date.now());
    });
  });

  describe('events', () => {
    it('creates once per transactionId: a replay returns the same event', async () => {
      const c = client();
      const input = { type: 'birth', transactionId: tx('create'), createdAtLocation: office };
      const first = await c.createEvent(input);
      const again = await c.createEvent(input);
      assert.deepEqual([again.id, again.trackingId], [first.id, first.trackingId]);
      assert.match(first.trackingId, /^[0-9A-Z]{6}$/);
      assert.equal((await eventsInSim()).length, 1);
    });

    it('notifies once per transactionId and reads acceptance from the actions', async () => {
      const c = client();
      const event = await newEvent(c);
      const input = { eventId: event.id, transactionId: tx('notify'), createdAtLocation: office, declaration };
      const first = await c.notify(input);
      const again = await c.notify(input);
      assert.deepEqual([first.outcome, again.outcome], ['accepted', 'accepted']);
      assert.equal(again.trackingId, event.trackingId);
      const [stored] = await eventsInSim();
      const requested = stored?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested') ?? [];
      assert.equal(requested.length, 1);
    });

    it('creates and notifies in one idempotent call', async () => {
      const c = client();
      const input = { eventType: 'birth', transactionId: tx('single'), createdAtLocation: office, declaration };
      const first = await c.createAndNotify(input);
      const again = await c.createAndNotify(input);
      assert.equal(first.outcome, 'accepted');
      assert.deepEqual([again.eventId, again.trackingId], [first.eventId, first.trackingId]);
      assert.equal((await eventsInSim()).length, 1);
    });

    it('gives back the field problems of a 400 as a list', async () => {
      const c = client();
      const event = await newEvent(c);
      const err = await failure(
        c.notify({
          eventId: event.id,
          transactionId: tx('notify'),
          createdAtLocation: office,
          declaration: { 'foo.bar': 'hello', 'child.name': { firstname: 999 } },
        }),
      );
      assert.deepEqual([err.status, err.kind, err.classification], [400, 'bad-request', 'permanent']);
      assert.ok(Array.isArray(err.body));
      assert.deepEqual(JSON.parse(err.opencrvsMessage), err.body);
      const ids = err.body.map((p: unknown) => (p && typeof p === 'object' && 'id' in p ? p.id : undefined));
      assert.ok(ids.includes('foo.bar'), err.opencrvsMessage);
    });

    it('calls a body over the size limit a permanent failure, saying its size and what to do', async () => {
      const c = client();
      const event = await newEvent(c);
      const huge = { ...declaration, 'child.reason': 'x'.repeat(2 * 1024 * 1024) };
      const err = await failure(
        c.notify({ eventId: event.id, transactionId: tx('notify'), createdAtLocation: office, declaration: huge }),
      );
      assert.deepEqual([err.status, err.classification], [413, 'permanent']);
      const said = /request of ([\d,]+) bytes was refused as too large.*100,000.*client_max_body_size.*replay/.exec(
        err.message,
      );
      assert.ok(said?.[1], err.message);
      assert.ok(Number(said[1].replaceAll(',', '')) > 2 * 1024 * 1024, 'the size of the body sent');
      assert.doesNotMatch(err.opencrvsMessage, /100,000|replay/, "OpenCRVS's words kept apart");
      assert.match(classifyFailure(err).error.message, /too large.*then replay/, 'what the dead row says');
    });

    it('calls an unknown office an operator problem', async () => {
      const err = await failure(
        client().createEvent({ type: 'birth', transactionId: tx('create'), createdAtLocation: randomUUID() }),
      );
      assert.deepEqual([err.status, err.kind, err.classification], [400, 'unknown-office', 'operator']);
    });

    it('treats a second notification of a notified event as already notified', async () => {
      const c = client();
      const event = await newEvent(c);
      await c.notify({ eventId: event.id, transactionId: tx('notify'), createdAtLocation: office, declaration });
      const err = await failure(
        c.notify({ eventId: event.id, transactionId: tx('notify'), createdAtLocation: office, declaration }),
      );
      assert.deepEqual([err.status, err.kind, err.alreadyNotified], [409, 'already-notified', true]);
    });

    it('gives a permanent not-found for an unknown event', async () => {
      const err = await failure(
        client().notify({ eventId: randomUUID(), transactionId: tx('notify'), createdAtLocation: office, declaration }),
      );
      assert.deepEqual([err.status, err.kind, err.classification], [404, 'not-found', 'permanent']);
    });

    it("classifies by OpenCRVS's own words when a name sent spells them, and keeps only the scrubbed text", async () => {
      const { logger, lines } = capturingLogger();
      const c = client({}, { logger });
      const named = (surname: string) => ({ ...declaration, 'child.name': { firstname: 'Jane', surname } });
      const notified = await newEvent(c);
      await c.notify({ eventId: notified.id, transactionId: tx('notify'), createdAtLocation: office, declaration });
      const fresh = await newEvent(c);
      const cases: Array<[string, () => Promise<unknown>, [number, string, string]]> = [
        // 'Notified' is found upper-cased in "in 'NOTIFIED' state".
        [
          'Notified',
          () =>
            c.notify({
              eventId: notified.id,
              transactionId: tx('notify'),
              createdAtLocation: office,
              declaration: named('Notified'),
            }),
          [409, 'already-notified', 'permanent'],
        ],
        // "Event not found with ID: …": a wrong events URL (the queue held) if "Event" goes.
        [
          'Event',
          () =>
            c.notify({
              eventId: randomUUID(),
              transactionId: tx('notify'),
              createdAtLocation: office,
              declaration: named('Event'),
            }),
          [404, 'not-found', 'permanent'],
        ],
        // "createdAtLocation must be a valid location id": 'Location' is inside createdAtLocation.
        [
          'Location',
          () =>
            c.notify({
              eventId: fresh.id,
              transactionId: tx('notify'),
              createdAtLocation: randomUUID(),
              declaration: named('Location'),
            }),
          [400, 'unknown-office', 'operator'],
        ],
      ];
      for (const [name, call, expected] of cases) {
        const err = await failure(call());
        assert.deepEqual([err.status, err.kind, err.classification], expected, `${name}: ${err.opencrvsMessage}`);
        assert.match(err.opencrvsMessage, /\[redacted\]/, `${name}: the stored text is the scrubbed one`);
        for (const text of [err.message, err.opencrvsMessage, JSON.stringify(err.body)])
          assert.ok(!text.includes(name) && !text.includes(name.toUpperCase()), `${name} kept: ${text}`);
      }
      await control.configure({ actionConfirmation: 'fail' });
      const unconfirmed = await newEvent(c);
      const err = await failure(
        c.notify({
          eventId: unconfirmed.id,
          transactionId: tx('notify'),
          createdAtLocation: office,
          declaration: { ...declaration, 'child.name': { firstname: 'Unexpected', surname: 'Api' } },
        }),
      );
      assert.deepEqual([err.status, err.kind, err.classification], [500, 'confirmation-failed', 'retryable']);
      assert.equal(err.opencrvsMessage, '[redacted] failure from country config action confirmation [redacted]');
      // The answers as received (the names in them) reach no log line either.
      const logged = lines.join('');
      assert.ok(lines.length > 0);
      for (const raw of ["'NOTIFIED' state", 'Event not found', 'createdAtLocation must', 'Unexpected failure'])
        assert.ok(!logged.includes(raw), `${raw} logged: ${logged.slice(0, 400)}`);
    });

    it('throws a permanent rejection when the country configuration rejects, though HTTP was 200', async () => {
      await control.configure({ actionConfirmation: 'reject' });
      const c = client();
      const event = await newEvent(c);
      const err = await failure(
        c.notify({ eventId: event.id, transactionId: tx('notify'), createdAtLocation: office, declaration }),
      );
      assert.deepEqual([err.kind, err.classification, err.status], ['rejected', 'permanent', undefined]);
    });

    it('reports pending when the country configuration has not decided', async () => {
      await control.configure({ actionConfirmation: 'pending' });
      const c = client();
      const event = await newEvent(c);
      const result = await c.notify({
        eventId: event.id,
        transactionId: tx('notify'),
        createdAtLocation: office,
        declaration,
      });
      assert.equal(result.outcome, 'pending');
    });
  });

  describe('faults', () => {
    it('classifies 503 with Retry-After as retryable with the delay', async () => {
      await control.configure({ faults: { errorRate: 1, errorStatus: 503, retryAfterSeconds: 7 } });
      const err = await failure(newEvent());
      assert.deepEqual(
        [err.status, err.kind, err.classification, err.retryAfterMs],
        [503, 'server', 'retryable', 7000],
      );
    });

    it('classifies 429 as rate-limited and 500 as a retryable server error', async () => {
      await control.configure({ faults: { errorRate: 1, errorStatus: 429, retryAfterSeconds: 3 } });
      const limited = await failure(newEvent());
      assert.deepEqual(
        [limited.kind, limited.classification, limited.retryAfterMs],
        ['rate-limited', 'retryable', 3000],
      );
      await control.configure({ faults: { errorRate: 1, errorStatus: 500 } });
      const server = await failure(newEvent());
      assert.deepEqual([server.kind, server.classification], ['server', 'retryable']);
    });

    it("keeps the form's option codes an answer echoes, and takes out the names", async () => {
      await control.configure({
        faults: { errorRate: 1, errorStatus: 400, errorEcho: 'plain', operations: ['notify'] },
      });
      const c = client();
      const event = await newEvent(c);
      const err = await failure(
        c.notify({
          eventId: event.id,
          transactionId: tx('notify'),
          createdAtLocation: office,
          declaration: {
            'child.name': { firstname: 'Zébulon', surname: 'Xylophonia' },
            'child.gender': 'female',
            'child.birthType': 'SINGLE',
            'child.placeOfBirth': 'HEALTH_FACILITY',
          },
        }),
      );
      assert.equal(err.status, 400);
      assert.equal(
        err.opencrvsMessage,
        'could not process declaration {"child.name":{"firstname":"[redacted]","surname":"[redacted]"},' +
          '"child.gender":"female","child.birthType":"SINGLE","child.placeOfBirth":"HEALTH_FACILITY"}',
      );
    });

    it('classifies a dropped connection as a retryable network error', async () => {
      await control.configure({ faults: { dropRate: 1 } });
      const err = await failure(newEvent());
      assert.deepEqual([err.kind, err.classification], ['network', 'retryable']);
      assert.equal((await eventsInSim()).length, 0);
    });

    it('classifies an answer slower than timeoutMs as a retryable timeout', async () => {
      await control.configure({ faults: { delayMs: 1500 } });
      const err = await failure(newEvent(client({ timeoutMs: 300 })));
      assert.deepEqual([err.kind, err.classification], ['timeout', 'retryable']);
    });

    it('finds the committed event on replay after commit-then-fail', async () => {
      const c = client();
      const input = { type: 'birth', transactionId: tx('create'), createdAtLocation: office };
      await control.configure({ faults: { commitThenFailRate: 1 } });
      const err = await failure(c.createEvent(input));
      assert.equal(err.classification, 'retryable');
      await control.configure({ faults: {} });
      const replay = await c.createEvent(input);
      const stored = await eventsInSim();
      assert.equal(stored.length, 1);
      assert.equal(stored[0]?.id, replay.id);
    });

    it('finds the committed notification on replay after commit-then-fail', async () => {
      const c = client();
      const event = await newEvent(c);
      const input = { eventId: event.id, transactionId: tx('notify'), createdAtLocation: office, declaration };
      await control.configure({ faults: { commitThenFailRate: 1 } });
      assert.equal((await failure(c.notify(input))).classification, 'retryable');
      await control.configure({ faults: {} });
      assert.equal((await c.notify(input)).outcome, 'accepted');
      const [stored] = await eventsInSim();
      assert.equal(stored?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested').length, 1);
    });
  });

  describe('locations', () => {
    it('resolves offices and facilities by id, by externalId and checks their type', async () => {
      const c = client();
      const resolver = new LocationResolver(c);
      const seededOffice = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE');
      const facility = sim.locations.find((l) => l.locationType === 'HEALTH_FACILITY');
      assert.ok(seededOffice && facility);
      assert.equal((await resolver.resolve(seededOffice.id, 'CRVS_OFFICE')).externalId, seededOffice.externalId);
      assert.equal((await resolver.resolve(facility.externalId, 'HEALTH_FACILITY')).id, facility.id);
      assert.equal(resolver.resolveSync(facility.externalId), facility.id);
      await assert.rejects(resolver.resolve(facility.externalId, 'CRVS_OFFICE'), { kind: 'unknown-office' });
      await assert.rejects(resolver.resolve('CRVS_OFFICE_doesNotExist'), { kind: 'unknown-office' });
      await assert.rejects(resolver.resolve(randomUUID()), { kind: 'unknown-office' });
    });

    it('lists locations of one type', async () => {
      const facilities = await client().listLocations({ locationType: 'HEALTH_FACILITY' });
      assert.ok(facilities.length > 0);
      assert.ok(facilities.every((l) => l.locationType === 'HEALTH_FACILITY'));
      const byId = await client().listLocations({ id: office });
      assert.deepEqual(
        byId.map((l) => l.id),
        [office],
      );
    });
  });
});

describe('OpenCRVS client against the 1.9 simulator', () => {
  let sim: Simulator;
  let office = '';

  before(async () => {
    sim = await startOpenCrvsSimulator({ port: 0, version: '1.9' });
    const found = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE');
    assert.ok(found);
    office = found.id;
  });

  after(async () => {
    await sim.close();
  });

  it('creates and notifies through /events/notifications, idempotently', async () => {
    const c = createOpenCrvsClient(settingsFor(sim, { version: '1.9' }));
    const event = await c.createEvent({ type: 'birth', transactionId: `c-${randomUUID()}`, createdAtLocation: office });
    const input = { eventId: event.id, transactionId: `n-${randomUUID()}`, createdAtLocation: office, declaration };
    const first = await c.notify(input);
    const again = await c.notify(input);
    assert.deepEqual(
      [first.outcome, first.trackingId, again.trackingId],
      ['accepted', event.trackingId, event.trackingId],
    );
    const events = await new OpenCrvsSandboxControl(sim.baseUrl).events();
    const stored = events.find((e) => e.id === event.id);
    assert.equal(stored?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested').length, 1);
  });

  it('holds a delivery to an eventsUrl that is not the events API with a message naming opencrvs.eventsUrl', async () => {
    // The review's configuration: 1.9 lists locations on the gateway, so only the first delivery asks this URL.
    const c = createOpenCrvsClient(settingsFor(sim, { version: '1.9', eventsUrl: `${sim.eventsUrl}/v1` }));
    const err = await failure(
      c.createEvent({ type: 'birth', transactionId: `c-${randomUUID()}`, createdAtLocation: office }),
    );
    assert.deepEqual([err.status, err.kind, err.classification], [404, 'config', 'operator']);
    const held = classifyFailure(err);
    assert.equal(held.classification, 'operator');
    assert.match(held.error.message, /^Not found: is opencrvs\.eventsUrl the events API\? It ends in \/api\/events/);
  });

  it('probes the events API without sending anything: passes the right eventsUrl, refuses a wrong one', async () => {
    const control = new OpenCrvsSandboxControl(sim.baseUrl);
    const before = (await control.events()).length;
    await createOpenCrvsClient(settingsFor(sim, { version: '1.9' })).probeEvents();
    const wrong = createOpenCrvsClient(settingsFor(sim, { version: '1.9', eventsUrl: `${sim.eventsUrl}/v1` }));
    const err = await failure(wrong.probeEvents());
    assert.deepEqual([err.status, err.kind], [404, 'config']);
    assert.equal((await control.events()).length, before, 'the probe created an event');
  });

  it('refuses create-and-notify as a configuration problem', async () => {
    const c = createOpenCrvsClient(settingsFor(sim, { version: '1.9' }));
    const err = await failure(
      c.createAndNotify({
        eventType: 'birth',
        transactionId: `s-${randomUUID()}`,
        createdAtLocation: office,
        declaration,
      }),
    );
    assert.deepEqual([err.kind, err.classification], ['config', 'operator']);
  });

  it('downloads the v1 location list once a lookup, a UUID it does not list included', async () => {
    const control = new OpenCrvsSandboxControl(sim.baseUrl);
    const resolver = new LocationResolver(createOpenCrvsClient(settingsFor(sim, { version: '1.9' })));
    const facility = sim.locations.find((l) => l.locationType === 'HEALTH_FACILITY');
    assert.ok(facility?.externalId);
    const listed = async () => (await control.requests()).locations ?? 0;
    let before = await listed();
    // Not listed: asked by id and by externalId, from one download.
    await assert.rejects(resolver.resolve(randomUUID()), { kind: 'unknown-office' });
    assert.equal((await listed()) - before, 1, 'an unlisted UUID');
    for (const ref of [facility.id, facility.externalId]) {
      before = await listed();
      assert.equal((await resolver.resolve(ref, 'HEALTH_FACILITY')).id, facility.id);
      assert.equal((await listed()) - before, 1, ref === facility.id ? 'a listed UUID' : 'an externalId');
    }
  });

  // The forms an operator writes for a 1.9 deployment (docs/opencrvs-api.md, "URLs"), through the loader as
  // from a file: each must reach the gateway's location API, the register host's way (/api/location) too.
  it('reaches the v1 location API from every configured form of the events URL', async () => {
    const control = new OpenCrvsSandboxControl(sim.baseUrl);
    const seededOffice = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE');
    assert.ok(seededOffice?.externalId);
    const answer = await fetch(
      `${sim.tokenUrl}?client_id=${sim.clientId}&client_secret=${sim.clientSecret}&grant_type=client_credentials`,
      { method: 'POST' },
    );
    const { access_token: accessToken } = (await answer.json()) as { access_token: string };
    const credentials = { clientId: sim.clientId, clientSecret: sim.clientSecret };
    const forms = {
      'tokenUrl /token, eventsUrl /api/events': {
        tokenUrl: `${sim.baseUrl}/token`,
        eventsUrl: `${sim.baseUrl}/api/events`,
        ...credentials,
      },
      'accessToken, eventsUrl /api/events': { accessToken, eventsUrl: `${sim.baseUrl}/api/events` },
      'tokenUrl /token, eventsUrl /events (gateway)': {
        tokenUrl: `${sim.baseUrl}/token`,
        eventsUrl: `${sim.baseUrl}/events`,
        ...credentials,
      },
      'accessToken, eventsUrl /events/ (gateway)': { accessToken, eventsUrl: `${sim.baseUrl}/events/` },
    };
    for (const [form, opencrvs] of Object.entries(forms)) {
      const config = configFromObject({
        opencrvs: { version: '1.9', ...opencrvs },
        routing: { defaultOffice: seededOffice.externalId },
      });
      const before = (await control.requests()).locations ?? 0;
      const results = await checkRouting(config, createOpenCrvsClient(config.opencrvs));
      assert.deepEqual(
        results.map((r) => r.status),
        ['ok'],
        `${form}: ${results.map((r) => r.detail).join('; ')}`,
      );
      assert.ok(((await control.requests()).locations ?? 0) > before, `${form}: asked the simulator`);
    }
  });

  it('says which opencrvs.eventsUrl to give when no gateway can be told from it', async () => {
    const config = configFromObject({
      opencrvs: {
        version: '1.9',
        tokenUrl: `${sim.baseUrl}/token`,
        eventsUrl: `${sim.baseUrl}/api/events-service`,
        clientId: sim.clientId,
        clientSecret: sim.clientSecret,
      },
      routing: { defaultOffice: 'HQfb8fPBmW2' },
    });
    const results = await checkRouting(config, createOpenCrvsClient(config.opencrvs));
    assert.equal(results.length, 1);
    assert.equal(results[0]?.status, 'fail');
    const message = results[0]?.detail ?? '';
    assert.match(message, /give opencrvs\.eventsUrl as the events API ending in \/events/);
    // Neither the domain (refused beside both URLs) nor a guess that the URL should end in /api/events.
    assert.doesNotMatch(message, /opencrvs\.domain|ending in \/api\/events/);
  });

  it('resolves offices and facilities through the gateway v1 location API, no token needed', async () => {
    const resolver = new LocationResolver(createOpenCrvsClient(settingsFor(sim, { version: '1.9' })));
    const seededOffice = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE' && l.partOf);
    const facility = sim.locations.find((l) => l.locationType === 'HEALTH_FACILITY');
    assert.ok(seededOffice && facility);
    const resolved = await resolver.resolve(seededOffice.externalId, 'CRVS_OFFICE');
    assert.deepEqual(
      [resolved.id, resolved.name, resolved.administrativeAreaId],
      [seededOffice.id, seededOffice.name, seededOffice.partOf],
    );
    assert.equal((await resolver.resolve(facility.id, 'HEALTH_FACILITY')).externalId, facility.externalId);
    await assert.rejects(resolver.resolve(facility.externalId, 'CRVS_OFFICE'), { kind: 'unknown-office' });
    const raw = await fetch(`${sim.baseUrl}/location?type=CRVS_OFFICE&_count=0`);
    assert.equal(raw.status, 200, 'public: no bearer token');
    const bundle = (await raw.json()) as { resourceType: string; entry: Array<{ resource: { type: unknown } }> };
    assert.equal(bundle.resourceType, 'Bundle');
    assert.ok(bundle.entry.length > 0);
    for (const entry of bundle.entry)
      assert.deepEqual(entry.resource.type, {
        coding: [{ system: 'http://opencrvs.org/specs/location-type', code: 'CRVS_OFFICE' }],
      });
  });
});
