// The admin routes over HTTP against a real SQLite ledger: disabled without a token, authentication and
// the throttle of wrong tokens, the JSON API (list, detail, summary, replay, dismissal and its undo), CSRF
// refusal, the audit lines and the personal-data rule. The write-back queue over a real bridge is in
// admin-write-backs.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_DISABLED_MESSAGE,
  type AdminTarget,
  adminRoutes,
  type SourceStatusView,
} from '../../src/http/admin/index.js';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { hashPayload, type Ledger, type LedgerPayload, openLedger } from '../../src/ledger/index.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { replayRows } from '../../src/sources/replay.js';
import { eventInput, settleRow } from '../unit/ledger-helpers.js';

const TOKEN = 'admin-test-token-0123456789';
const OFFICE = '028d2c85-ca31-426d-b5d1-2cef545a4902';
const FIRSTNAME = 'Wanjiku';
// What OpenCRVS answers a bad declaration with: the field problems echo the submitted value.
const ECHOING_400 = JSON.stringify([
  { message: 'Invalid input', id: 'child.name', value: { firstname: FIRSTNAME, surname: 'Otieno' } },
]);

function payload(firstname: string): LedgerPayload {
  return {
    declaration: { 'child.name': { firstname, surname: 'Otieno' }, 'child.dob': '2026-01-02' },
    office: OFFICE,
  };
}

interface Harness {
  base: string;
  ledger: Ledger;
  deadId: number;
  deliveredId: number;
  deathId: number;
  hold: { reason: string; since: number } | undefined;
  replayCalls: Array<number[] | 'dead'>;
  /** What the admin routes logged (JSON lines): operator actions are audited there. */
  logLines: string[];
  close(): Promise<void>;
}

const SOURCES: SourceStatusView[] = [
  {
    id: 'emr',
    kind: 'fhir',
    watermarks: { Encounter: '2026-03-04T10:00:00Z', Patient: undefined },
    lastPollStartedAt: 1_700_000_000_000,
    lastPollFinishedAt: 1_700_000_001_000,
    consecutiveFailures: 0,
    subscription: {
      gaps: 2,
      lastGapReason: 'eventNumber jumped from 4 to 7',
      lastGapAt: 1_700_000_000_500,
      catchUps: 2,
    },
  },
];

async function startHarness(settings: { token?: string; showPersonalData: boolean }): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'admin-test-'));
  const ledger = openLedger(join(dir, 'bridge.db'));
  const record = (subject: string, eventType: string, firstname: string) => {
    const p = payload(firstname);
    return ledger.recordEvent({
      sourceId: 'emr',
      eventType,
      subjectKey: `Patient/${subject}`,
      sourceRef: `Encounter/${subject}`,
      sourceVersion: '1',
      mappingId: `${eventType}.fhir`,
      payloadHash: hashPayload(p),
      payload: p,
    }).row;
  };
  const dead = record('a1', 'birth', FIRSTNAME);
  const delivered = record('a2', 'birth', 'Amani');
  const death = record('a3', 'death', 'Baraka');
  const claimed = ledger.claimDue('test-worker', 2);
  assert.deepEqual(
    claimed.map((r) => r.id),
    [dead.id, delivered.id],
  );
  const startedAt = Date.now();
  ledger.settle({
    id: dead.id,
    workerId: 'test-worker',
    claimedPayloadHash: dead.payloadHash,
    step: 'notify',
    startedAt,
    settlement: {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', status: 400, message: ECHOING_400 },
    },
  });
  ledger.settle({
    id: delivered.id,
    workerId: 'test-worker',
    claimedPayloadHash: delivered.payloadHash,
    step: 'notify',
    startedAt,
    settlement: { outcome: 'delivered', eventId: 'ev-1', trackingId: 'TRK0001' },
  });
  const harness: Harness = {
    base: '',
    ledger,
    deadId: dead.id,
    deliveredId: delivered.id,
    deathId: death.id,
    hold: undefined,
    replayCalls: [],
    logLines: [],
    close: async () => undefined,
  };
  const target: AdminTarget = {
    ledger,
    counts: () => ledger.counts(),
    held: () => harness.hold,
    sourceStatuses: () => SOURCES,
    replay: async (ids) => {
      harness.replayCalls.push(ids);
      return ledger.replay(ids);
    },
  };
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => harness.logLines.push(line) } });
  const app = createHttpApp([{ path: '/admin', router: adminRoutes(target, settings, { logger }) }], silentLogger);
  const { server, port }: { server: Server; port: number } = await listen(app, 0, '127.0.0.1');
  harness.base = `http://127.0.0.1:${port}`;
  harness.close = async () => {
    await closeServer(server, 1000);
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return harness;
}

const bearer = { Authorization: `Bearer ${TOKEN}` };
const basic = (password: string, user = 'anyone') => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

async function request(
  h: Harness,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const response = await fetch(`${h.base}${path}`, { ...init, signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

/**
 * A request from `from` (127.0.0.2, 127.0.0.3, …: Linux routes all of 127/8 to loopback), which the
 * throttle of wrong tokens counts as another address than the tests' usual 127.0.0.1.
 */
function requestFrom(
  h: Harness,
  from: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Headers; text: string }> {
  return new Promise((resolve, reject) => {
    const options = { method, headers, localAddress: from, agent: false, timeout: 5000 };
    const req = httpRequest(`${h.base}${path}`, options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        const answered = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (typeof value === 'string') answered.set(name, value);
          else for (const one of value ?? []) answered.append(name, one); // set-cookie comes as a list
        }
        resolve({ status: res.statusCode ?? 0, headers: answered, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Reads a JSON object field by field without casting. */
function obj(value: unknown): Record<string, unknown> {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), 'expected a JSON object');
  return { ...value };
}

function list(value: unknown): unknown[] {
  assert.ok(Array.isArray(value), 'expected a JSON array');
  return value;
}

describe('admin routes without a token configured', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ showPersonalData: false });
  });
  after(() => h.close());

  it('answers 404 with the reason on every admin path, even with credentials', async () => {
    for (const path of ['/admin', '/admin/', '/admin/api/summary', '/admin/api/events/1', '/admin/app.js']) {
      const res = await request(h, path, { headers: bearer });
      assert.equal(res.status, 404, path);
      assert.deepEqual(res.body, { error: ADMIN_DISABLED_MESSAGE });
    }
    const post = await request(h, '/admin/api/replay-dead', { method: 'POST', headers: bearer });
    assert.equal(post.status, 404);
    assert.equal(h.replayCalls.length, 0);
  });
});

describe('admin routes with a token', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ token: TOKEN, showPersonalData: false });
  });
  after(() => h.close());

  it('refuses requests without the token, or with a wrong one, with a Basic challenge', async () => {
    const cases: Array<Record<string, string>> = [
      {},
      { Authorization: 'Bearer wrong-token' },
      basic('wrong-token'),
      { Authorization: `Bearer ${TOKEN}x` },
      { Authorization: 'Basic not-base64-colon' },
      { Authorization: TOKEN },
    ];
    // Each case from an address of its own: together they are more wrong tokens than one address may send.
    for (const [i, headers] of cases.entries()) {
      for (const path of ['/admin', '/admin/api/summary', '/admin/app.js']) {
        const res = await requestFrom(h, `127.0.0.${10 + i}`, path, headers);
        assert.equal(res.status, 401, `${path} ${JSON.stringify(Object.keys(headers))}`);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="opencrvs-bridge admin"/);
        assert.match(String(obj(JSON.parse(res.text)).error), /admin token required/);
      }
    }
  });

  it('answers 429 with Retry-After to any token from an address that sent 10 wrong ones, the right one too', async () => {
    const guesser = '127.0.0.30';
    const logged = () => h.logLines.filter((line) => line.includes('admin authentication throttled'));
    // A browser's first request carries no credentials: not a wrong token, not counted.
    for (let i = 0; i < 12; i++) assert.equal((await requestFrom(h, guesser, '/admin')).status, 401);
    for (let i = 1; i <= 10; i++) {
      const res = await requestFrom(h, guesser, '/admin/api/summary', { Authorization: `Bearer wrong-token-${i}` });
      assert.equal(res.status, 401, `wrong token ${i}`);
    }
    // Blocked: no token is compared, so the right one is refused like the wrong ones, and says nothing.
    for (const headers of [{ Authorization: 'Bearer wrong-token-11' }, basic('wrong-token-12'), bearer, basic(TOKEN)]) {
      const refused = await requestFrom(h, guesser, '/admin/api/summary', headers);
      assert.equal(refused.status, 429, 'a token while blocked');
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(retryAfter > 290 && retryAfter <= 300, `Retry-After: ${retryAfter}`);
      assert.equal(refused.headers.get('www-authenticate'), null, 'no prompt for another try');
      assert.equal(refused.headers.get('cache-control'), 'no-store');
    }
    // Without credentials it is challenged, so that a browser asks its user for the token.
    const fresh = await requestFrom(h, guesser, '/admin');
    assert.equal(fresh.status, 401);
    assert.match(fresh.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    // Other addresses are not affected: the right token opens, a wrong one is a plain 401.
    assert.equal((await requestFrom(h, '127.0.0.31', '/admin/api/summary', bearer)).status, 200);
    assert.equal((await request(h, '/admin/api/summary', { headers: basic(TOKEN) })).status, 200);
    const other = await requestFrom(h, '127.0.0.31', '/admin/api/summary', { Authorization: 'Bearer wrong-token-x' });
    assert.equal(other.status, 401);
    // Said once for the block, with the address and never a token.
    assert.equal(logged().length, 1, logged().join('\n'));
    const line = JSON.parse(logged()[0] ?? '{}');
    assert.equal(line.level, 'warn');
    assert.equal(line.remoteAddress, guesser);
    assert.ok(!h.logLines.join('\n').includes('wrong-token') && !h.logLines.join('\n').includes(TOKEN));
  });

  it('compares no more than 10 tokens from one address sending 90 at once, on as many connections', async () => {
    const guesser = '127.0.0.34';
    const guesses = Array.from({ length: 90 }, (_, i) =>
      requestFrom(h, guesser, '/admin/api/summary', { Authorization: `Bearer parallel-guess-${i}` }),
    );
    const statuses = (await Promise.all(guesses)).map((res) => res.status);
    assert.equal(statuses.filter((s) => s === 401).length, 10, 'compared and wrong');
    assert.equal(statuses.filter((s) => s === 429).length, 80, 'refused uncompared');
    // The guesser's 91st, 92nd … are not compared either: had they been, the right one would open.
    const more = await Promise.all(
      [bearer, basic(TOKEN), { Authorization: 'Bearer parallel-guess-x' }].map((headers) =>
        requestFrom(h, guesser, '/admin/api/summary', headers),
      ),
    );
    assert.deepEqual(
      more.map((res) => res.status),
      [429, 429, 429],
    );
  });

  it('keeps the operator’s page open from an address another client keeps blocked with wrong tokens', async () => {
    const shared = '127.0.0.33';
    // The operator opens the page (a browser says it is navigating: Sec-Fetch-Site) and is given a session.
    const opened = await requestFrom(h, shared, '/admin', { ...basic(TOKEN), 'Sec-Fetch-Site': 'none' });
    assert.equal(opened.status, 200);
    const setCookie = opened.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^bridge_admin_session=[\w-]{43}; Path=\/admin; Max-Age=43200; HttpOnly; SameSite=Strict$/);
    const cookie = setCookie.split(';')[0] ?? '';
    // Another user of the address (a local process, a page reaching it) sends wrong tokens on and on.
    for (let i = 0; i < 15; i++)
      await requestFrom(h, shared, '/admin/api/summary', { Authorization: `Bearer guess-${i}` });
    assert.equal((await requestFrom(h, shared, '/admin/api/summary', { Authorization: 'Bearer guess-x' })).status, 429);
    // The operator's page goes on by its session: its reads, and a POST from the page past the token to
    // its handler (a row that does not exist: 404 from the replay route, not 401 or 429).
    const poll = await requestFrom(h, shared, '/admin/api/summary', { ...basic(TOKEN), Cookie: cookie });
    assert.equal(poll.status, 200);
    assert.equal(poll.headers.get('set-cookie'), null, 'no second session');
    const replay = await requestFrom(
      h,
      shared,
      '/admin/api/events/999999/replay',
      { Cookie: cookie, Origin: h.base, 'Sec-Fetch-Site': 'same-origin' },
      'POST',
    );
    assert.equal(replay.status, 404, replay.text);
    // The session is a browser's: another site's POST carrying it is refused as Basic ones are.
    const crossSite = await requestFrom(
      h,
      shared,
      '/admin/api/events/999999/replay',
      { Cookie: cookie, Origin: 'https://evil.example' },
      'POST',
    );
    assert.equal(crossSite.status, 403);
    assert.equal(h.replayCalls.length, 0);
    // A made-up session is no way in: it is a wrong token like any other, refused uncompared here.
    const madeUp = { Cookie: `bridge_admin_session=${'A'.repeat(43)}` };
    assert.equal((await requestFrom(h, '127.0.0.35', '/admin/api/summary', madeUp)).status, 401);
    assert.equal((await requestFrom(h, shared, '/admin/api/summary', { ...madeUp, ...bearer })).status, 429);
    // Scripts (Bearer, no session) from the blocked address wait for the Retry-After.
    assert.equal((await requestFrom(h, shared, '/admin/api/summary', bearer)).status, 429);
  });

  it('opens no session for a script, nor for another site’s request carrying remembered credentials', async () => {
    for (const headers of [bearer, basic(TOKEN), { ...basic(TOKEN), 'Sec-Fetch-Site': 'cross-site' }]) {
      const res = await requestFrom(h, '127.0.0.36', '/admin/api/summary', headers);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('set-cookie'), null, JSON.stringify(Object.keys(headers)));
    }
  });

  it('logs out: ends the session and challenges whatever credentials come with it', async () => {
    const from = '127.0.0.37';
    const opened = await requestFrom(h, from, '/admin', { ...basic(TOKEN), 'Sec-Fetch-Site': 'none' });
    const cookie = (opened.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    assert.match(cookie, /^bridge_admin_session=/);
    assert.equal((await requestFrom(h, from, '/admin/api/summary', { Cookie: cookie })).status, 200);
    const out = await requestFrom(h, from, '/admin/logout', { ...basic(TOKEN), Cookie: cookie });
    assert.equal(out.status, 401);
    assert.match(out.headers.get('www-authenticate') ?? '', /^Basic realm="opencrvs-bridge admin"/);
    assert.equal(
      out.headers.get('set-cookie'),
      'bridge_admin_session=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict',
    );
    assert.match(out.text, /Logged out/);
    assert.equal((await requestFrom(h, from, '/admin/api/summary', { Cookie: cookie })).status, 401, 'session ended');
    // Credentials sent to it are not compared, so not counted either: 20 wrong ones block nothing.
    for (let i = 0; i < 20; i++)
      assert.equal((await requestFrom(h, from, '/admin/logout', { Authorization: `Bearer out-${i}` })).status, 401);
    assert.equal((await requestFrom(h, from, '/admin/api/summary', bearer)).status, 200);
  });

  it('does not forget an address’s wrong tokens when the right one comes between them', async () => {
    const shared = '127.0.0.32';
    // 9 wrong tokens, a script asks with the right one, 9 more: had the right token reset the count, a
    // guesser sharing the address would never be blocked while the script runs.
    const answers: number[] = [];
    const operator: number[] = [];
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 9; i++) {
        answers.push(
          (await requestFrom(h, shared, '/admin/api/summary', { Authorization: `Bearer guess-${round}-${i}` })).status,
        );
      }
      operator.push((await requestFrom(h, shared, '/admin/api/summary', bearer)).status);
    }
    assert.deepEqual(answers, [...Array(9).fill(401), 401, ...Array(8).fill(429)], 'blocked at the 10th wrong token');
    assert.deepEqual(operator, [200, 429]);
  });

  it('accepts the token as Bearer or as the Basic password with any user name', async () => {
    for (const headers of [bearer, basic(TOKEN), basic(TOKEN, 'ops')]) {
      const res = await request(h, '/admin/api/summary', { headers });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
  });

  it('serves the page, its script and its style behind the token with a strict CSP', async () => {
    const page = await request(h, '/admin', { headers: basic(TOKEN) });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(page.text, /<script src="\/admin\/app\.js" defer><\/script>/);
    assert.match(page.text, /data-api="\/admin\/api"/);
    // "Did it arrive?" asked with an MRN: the page says identifiers are not searched and how to find the id.
    assert.match(page.text, /Identifiers \(a medical record number, an OpenMRS identifier\) are not searched/);
    assert.match(page.text, /personal data, which the ledger does not index\./);
    assert.match(page.text, /GET &lt;baseUrl&gt;\/Patient\?identifier=&lt;value&gt;/);
    const script = await request(h, '/admin/app.js', { headers: basic(TOKEN) });
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.doesNotMatch(script.text, /innerHTML/);
    const style = await request(h, '/admin/app.css', { headers: basic(TOKEN) });
    assert.match(style.headers.get('content-type') ?? '', /text\/css/);
  });

  it('lists events newest first and filters by state, event type, source and date', async () => {
    const all = obj((await request(h, '/admin/api/events', { headers: bearer })).body);
    assert.deepEqual(
      list(all.events).map((e) => obj(e).id),
      [h.deathId, h.deliveredId, h.deadId],
    );
    assert.equal(all.hasMore, false);

    const dead = obj((await request(h, '/admin/api/events?state=dead', { headers: bearer })).body);
    assert.deepEqual(
      list(dead.events).map((e) => obj(e).state),
      ['dead'],
    );
    const twoStates = obj((await request(h, '/admin/api/events?state=dead,delivered', { headers: bearer })).body);
    assert.equal(list(twoStates.events).length, 2);
    const deaths = obj((await request(h, '/admin/api/events?eventType=death', { headers: bearer })).body);
    assert.deepEqual(
      list(deaths.events).map((e) => obj(e).id),
      [h.deathId],
    );
    const ids = async (query: string) =>
      list(obj((await request(h, `/admin/api/events?${query}`, { headers: bearer })).body).events).map(
        (e) => obj(e).id,
      );
    assert.deepEqual(await ids('find=Patient/a2'), [h.deliveredId], 'by the EMR record');
    assert.deepEqual(await ids('find=emr:Patient/a2'), [h.deliveredId], 'by source and record');
    assert.deepEqual(await ids('find=a3'), [h.deathId], 'by its id alone');
    assert.deepEqual(await ids('find=TRK0001'), [h.deliveredId], 'by the OpenCRVS tracking ID');
    assert.deepEqual(await ids(`find=%23${h.deathId}`), [h.deathId], "by its row number, '#N' as sync prints it");
    assert.deepEqual(await ids('find=Patient/a2&state=dead'), [], 'with the other filters');
    assert.deepEqual(await ids('find=Patient/zz'), []);
    assert.deepEqual(await ids('source=emr'), [h.deathId, h.deliveredId, h.deadId], 'by source');
    assert.deepEqual(await ids('source=emr&eventType=death'), [h.deathId], 'by source and event type');
    // None of these changed at the source after it was notified (bridge-subscription.test.ts has one that did).
    assert.deepEqual(await ids('updatedAfterNotification=true'), [], 'changed after notification');
    assert.deepEqual(await ids('updatedAfterNotification=false'), [h.deathId, h.deliveredId, h.deadId]);
    const future = obj((await request(h, `/admin/api/events?since=${Date.now() + 60_000}`, { headers: bearer })).body);
    assert.equal(list(future.events).length, 0);
    const past = obj((await request(h, '/admin/api/events?until=2000-01-01T00:00:00Z', { headers: bearer })).body);
    assert.equal(list(past.events).length, 0);
    // A date alone is its whole (UTC) day, both bounds inclusive: the rows are within the days of their own
    // updatedAt (the same day, unless the run crossed midnight UTC, when "today" would miss the earlier ones).
    const listed = list(obj((await request(h, '/admin/api/events', { headers: bearer })).body).events);
    const days = listed.map((e) => new Date(Number(obj(e).updatedAt)).toISOString().slice(0, 10)).sort();
    const [first, last] = [days[0], days.at(-1)];
    const within = obj((await request(h, `/admin/api/events?since=${first}&until=${last}`, { headers: bearer })).body);
    assert.equal(list(within.events).length, listed.length);

    const page1 = obj((await request(h, '/admin/api/events?limit=2', { headers: bearer })).body);
    assert.equal(list(page1.events).length, 2);
    assert.equal(page1.hasMore, true);
    const page2 = obj((await request(h, '/admin/api/events?limit=2&offset=2', { headers: bearer })).body);
    assert.deepEqual(
      list(page2.events).map((e) => obj(e).id),
      [h.deadId],
    );
    assert.equal(page2.hasMore, false);
  });

  it('answers 400 with the reason for a bad filter', async () => {
    for (const query of [
      'state=bogus',
      `find=${'x'.repeat(201)}`,
      'find=a&find=b',
      'limit=0',
      'limit=501',
      'offset=-1',
      'since=yesterday',
      'since=5&until=4',
      'eventType=Birth',
      'source=dhis2',
      'updatedAfterNotification=yes',
    ]) {
      const res = await request(h, `/admin/api/events?${query}`, { headers: bearer });
      assert.equal(res.status, 400, query);
      assert.equal(typeof obj(res.body).error, 'string');
    }
    // A source neither configured nor in the ledger is named as such, with the configured ones: a typo
    // does not answer an empty list (which reads "nothing from that source"), nor a whole-table walk.
    const unknown = await request(h, '/admin/api/events?source=Patient-Nyokabi', { headers: bearer });
    assert.equal(unknown.status, 400);
    assert.equal(obj(unknown.body).error, 'source: unknown source (configured: emr)');
  });

  it('answers a path that does not decode with 400, not 500', async () => {
    for (const path of ['/admin/api/events/%E0%A4%A', '/admin/api/write-backs/%zz']) {
      const res = await request(h, path, { headers: bearer });
      assert.equal(res.status, 400, path);
    }
  });

  it('shows an event in detail with ids, attempts and classified errors, without personal data', async () => {
    const res = await request(h, `/admin/api/events/${h.deadId}`, { headers: bearer });
    assert.equal(res.status, 200);
    const detail = obj(res.body);
    assert.equal(detail.state, 'dead');
    assert.equal(detail.sourceRef, 'Encounter/a1');
    assert.equal(detail.office, OFFICE);
    assert.equal(detail.payloadStored, true);
    const ids = obj(detail.transactionIds);
    assert.match(String(ids.create), /:create$/);
    assert.match(String(ids.notify), /:notify$/);
    const attempts = list(detail.attemptHistory).map(obj);
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]?.outcome, 'dead');
    const error = obj(attempts[0]?.error);
    assert.equal(error.classification, 'permanent');
    assert.equal(error.status, 400);
    assert.match(String(error.message), /child\.name/);
    assert.equal('declaration' in detail, false);
    assert.equal('annotation' in detail, false);
    // Neither the declaration nor the value OpenCRVS echoed reaches the API (detail, list or summary).
    for (const path of [`/admin/api/events/${h.deadId}`, '/admin/api/events', '/admin/api/summary']) {
      const text = (await request(h, path, { headers: bearer })).text;
      assert.equal(text.includes(FIRSTNAME), false, path);
      assert.equal(text.includes('2026-01-02'), false, path);
    }

    const delivered = obj((await request(h, `/admin/api/events/${h.deliveredId}`, { headers: bearer })).body);
    assert.equal(delivered.eventId, 'ev-1');
    assert.equal(delivered.trackingId, 'TRK0001');
    assert.equal(typeof delivered.deliveredAt, 'number');
  });

  it('answers 404 for an unknown row and 400 for a malformed id', async () => {
    assert.equal((await request(h, '/admin/api/events/99999', { headers: bearer })).status, 404);
    assert.equal((await request(h, '/admin/api/events/abc', { headers: bearer })).status, 400);
    assert.equal((await request(h, '/admin/api/nothing', { headers: bearer })).status, 404);
  });

  it('summarises counts by state and event type, the hold with its reason and source status', async () => {
    h.hold = { reason: 'OpenCRVS refused the client credentials (401)', since: 1_700_000_000_000 };
    h.ledger.setHold({ reason: h.hold.reason, since: h.hold.since, kind: 'unauthorized', status: 401 });
    try {
      const summary = obj((await request(h, '/admin/api/summary', { headers: bearer })).body);
      const byState = obj(summary.byState);
      assert.equal(byState.dead, 1);
      assert.equal(byState.delivered, 1);
      assert.equal(byState.pending, 1);
      assert.deepEqual(summary.byEventType, { birth: 2, death: 1 });
      assert.equal(summary.outstanding, 1);
      const hold = obj(summary.hold);
      assert.equal(hold.held, true);
      assert.equal(hold.reason, h.hold.reason);
      assert.equal(hold.kind, 'unauthorized');
      assert.equal(hold.status, 401);
      const sources = list(summary.sources).map(obj);
      assert.equal(sources[0]?.id, 'emr');
      assert.equal(obj(sources[0]?.subscription).gaps, 2);
      assert.equal(summary.showPersonalData, false);
    } finally {
      h.hold = undefined;
      h.ledger.setHold(undefined);
    }
    const free = obj((await request(h, '/admin/api/summary', { headers: bearer })).body);
    assert.deepEqual(free.hold, { held: false });
  });

  it('shows write-back as not configured when no source writes tracking ids back', async () => {
    const page = await request(h, '/admin/api/write-backs', { headers: bearer });
    assert.equal(page.status, 200);
    assert.deepEqual(page.body, { enabled: false, sources: [], jobs: [], limit: 100, offset: 0, hasMore: false });
    const summary = obj((await request(h, '/admin/api/summary', { headers: bearer })).body);
    assert.equal(obj(summary.writeBacks).enabled, false);
    const detail = obj((await request(h, `/admin/api/events/${h.deliveredId}`, { headers: bearer })).body);
    assert.equal(detail.writeBack, null);
    const requeue = await request(h, `/admin/api/write-backs/${h.deliveredId}/requeue`, {
      method: 'POST',
      headers: bearer,
    });
    assert.equal(requeue.status, 404);
    assert.match(String(obj(requeue.body).error), /not configured/);
  });

  it('refuses a cross-site replay carried by Basic credentials and leaves the row dead', async () => {
    const res = await request(h, `/admin/api/events/${h.deadId}/replay`, {
      method: 'POST',
      headers: { ...basic(TOKEN), Origin: 'https://evil.example' },
    });
    assert.equal(res.status, 403);
    assert.equal(h.ledger.get(h.deadId)?.state, 'dead');
    const crossSiteFetch = await request(h, `/admin/api/events/${h.deadId}/replay`, {
      method: 'POST',
      headers: { ...basic(TOKEN), 'Sec-Fetch-Site': 'cross-site' },
    });
    assert.equal(crossSiteFetch.status, 403);
    // A sibling subdomain's page is another site's page too.
    const sameSite = await request(h, `/admin/api/events/${h.deadId}/replay`, {
      method: 'POST',
      headers: { ...basic(TOKEN), 'Sec-Fetch-Site': 'same-site' },
    });
    assert.equal(sameSite.status, 403);
    assert.equal(h.replayCalls.length, 0);
  });

  it('refuses to replay a row that is not dead, or does not exist', async () => {
    const res = await request(h, `/admin/api/events/${h.deliveredId}/replay`, { method: 'POST', headers: bearer });
    assert.equal(res.status, 409);
    assert.match(String(obj(res.body).error), /delivered, not dead/);
    assert.equal((await request(h, '/admin/api/events/99999/replay', { method: 'POST', headers: bearer })).status, 404);
    assert.equal((await request(h, `/admin/api/events/${h.deadId}/replay`, { headers: bearer })).status, 405);
    assert.equal(h.replayCalls.length, 0);
  });

  it('answers another method on an API path 405 with Allow, and an unknown path 404', async () => {
    const reads = ['/admin/api/summary', '/admin/api/events', `/admin/api/events/${h.deadId}`];
    const writeBackReads = ['/admin/api/write-backs', `/admin/api/write-backs/${h.deadId}`];
    for (const path of [...reads, ...writeBackReads]) {
      for (const method of ['PUT', 'DELETE', 'PATCH', 'POST']) {
        const res = await request(h, path, { method, headers: bearer });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers.get('allow'), 'GET, HEAD', `${method} ${path}`);
        assert.deepEqual(res.body, { error: 'use GET' });
      }
      assert.equal((await request(h, path, { method: 'HEAD', headers: bearer })).status < 405, true, `HEAD ${path}`);
    }
    const writes = [
      `/admin/api/events/${h.deadId}/replay`,
      '/admin/api/replay-dead',
      `/admin/api/write-backs/${h.deadId}/requeue`,
      `/admin/api/events/${h.deadId}/dismiss`,
      `/admin/api/events/${h.deadId}/undismiss`,
    ];
    for (const path of writes) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await request(h, path, { method, headers: bearer });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers.get('allow'), 'POST', `${method} ${path}`);
      }
    }
    for (const path of ['/admin/api/nope', '/admin/api/events/1/nope', '/admin/nope']) {
      assert.equal((await request(h, path, { method: 'PUT', headers: bearer })).status, 404, path);
    }
    assert.equal(h.ledger.get(h.deadId)?.state, 'dead', 'nothing was replayed');
    assert.deepEqual(h.replayCalls, []);
  });

  it('replays a dead row from its own page (same origin) back into the queue with a fresh budget', async () => {
    const res = await request(h, `/admin/api/events/${h.deadId}/replay`, {
      method: 'POST',
      headers: { ...basic(TOKEN), Origin: h.base },
    });
    assert.equal(res.status, 200);
    const body = obj(res.body);
    assert.deepEqual(body.requeued, [h.deadId]);
    assert.equal(obj(body.event).state, 'pending');
    assert.deepEqual(h.replayCalls, [[h.deadId]]);
    const audit = h.logLines.map((line) => JSON.parse(line)).find((l) => l.msg === 'dead row replayed by admin');
    assert.deepEqual(audit?.rowIds, [h.deadId], 'the replay is in the log, by row id');
    assert.equal(audit?.remoteAddress, '127.0.0.1', 'and by the address it came from');
    const row = h.ledger.get(h.deadId);
    assert.equal(row?.state, 'pending');
    assert.equal(row?.attempts, 0);
    // Replaying again: no longer dead.
    assert.equal(
      (await request(h, `/admin/api/events/${h.deadId}/replay`, { method: 'POST', headers: bearer })).status,
      409,
    );
  });

  it('replays all dead rows with a Bearer token and reports what it requeued', async () => {
    // Make the pending death row dead through the outbox, like the worker would.
    const [claimed] = h.ledger.claimDue('test-worker', 10).filter((r) => r.id === h.deathId);
    assert.ok(claimed);
    h.ledger.settle({
      id: h.deathId,
      workerId: 'test-worker',
      claimedPayloadHash: claimed.payloadHash,
      step: 'create',
      startedAt: Date.now(),
      settlement: {
        outcome: 'dead',
        error: { classification: 'permanent', kind: 'forbidden', status: 403, message: 'no' },
      },
    });
    h.ledger.handBack(
      h.ledger.list({ states: ['delivering'] }).map((r) => r.id),
      'test-worker',
    );
    // From another address than the tests' usual one: the audit line names the one the request came from.
    const res = await requestFrom(h, '127.0.0.4', '/admin/api/replay-dead', bearer, 'POST');
    assert.equal(res.status, 200);
    assert.deepEqual(obj(JSON.parse(res.text)).requeued, [h.deathId]);
    assert.equal(h.ledger.get(h.deathId)?.state, 'pending');
    assert.deepEqual(h.replayCalls.at(-1), 'dead');
    const audit = h.logLines.map((line) => JSON.parse(line)).find((l) => l.msg === 'all dead rows replayed by admin');
    assert.equal(audit?.remoteAddress, '127.0.0.4');
  });

  describe('dismissal', () => {
    // Operator text that names a person, as a reason may ("duplicate of …"): stored, never logged.
    const REASON = 'duplicate of Nyokabi Kamau, registered in person';
    const json = (reason: unknown) => JSON.stringify({ reason });
    const dismiss = (id: number, body: string | undefined, headers: Record<string, string> = bearer) =>
      fetch(`${h.base}/admin/api/events/${id}/dismiss`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(5000),
      }).then(async (r) => ({ status: r.status, body: JSON.parse(await r.text()) as unknown }));
    let id: number;
    before(() => {
      id = h.ledger.recordInvalid({
        sourceId: 'emr',
        eventType: 'birth',
        subjectKey: 'Patient/dismiss-1',
        sourceRef: 'Encounter/dismiss-1',
        mappingId: 'birth.fhir',
        errors: [{ field: 'child.gender', message: 'not one of male, female, unknown' }],
      }).row.id;
    });

    it('refuses a dismissal without a good reason with 400, and leaves the row dead', async () => {
      const refusals: Array<[string | undefined, RegExp]> = [
        [undefined, /^reason: required, as JSON/],
        ['{}', /^reason: required, as JSON/],
        [json(''), /^reason: a reason is required$/],
        [json('   '), /^reason: a reason is required$/],
        [json(42), /^reason: a reason is required \(text\)$/],
        [json('x'.repeat(201)), /longer than 200 characters/],
        [json('two\nlines'), /one line/],
      ];
      for (const [body, error] of refusals) {
        const res = await dismiss(id, body);
        assert.equal(res.status, 400, String(body));
        assert.match(String(obj(res.body).error), error, String(body));
      }
      assert.equal((await dismiss(id, '{"reason": ')).status, 400, 'malformed JSON');
      assert.equal(h.ledger.get(id)?.state, 'dead');
    });

    it('refuses to dismiss a row that is not dead (409) or does not exist (404), and a cross-site Basic POST (403)', async () => {
      const delivered = await dismiss(h.deliveredId, json(REASON));
      assert.equal(delivered.status, 409);
      assert.match(String(obj(delivered.body).error), /is delivered, not dead: only dead rows dismiss/);
      assert.equal((await dismiss(99999, json(REASON))).status, 404);
      assert.equal((await dismiss(id, json(REASON), { ...basic(TOKEN), Origin: 'https://evil.example' })).status, 403);
      assert.equal((await dismiss(id, json(REASON), { ...basic(TOKEN), 'Sec-Fetch-Site': 'cross-site' })).status, 403);
      assert.equal(h.ledger.get(id)?.state, 'dead');
      assert.equal(h.ledger.get(h.deliveredId)?.state, 'delivered');
    });

    it('dismisses a dead row from its own page with the reason; logs its id, the reason’s length and the address', async () => {
      const res = await dismiss(id, json(`  ${REASON} `), { ...basic(TOKEN), Origin: h.base });
      assert.equal(res.status, 200);
      const body = obj(res.body);
      assert.deepEqual(body.dismissed, [id]);
      const event = obj(body.event);
      assert.equal(event.state, 'skipped');
      assert.equal(event.dismissed, true);
      // Stored as typed; shown, without showPersonalData, as a reason of that length only.
      assert.equal(h.ledger.get(id)?.skipReason, `dismissed by an operator: ${REASON}`);
      const hidden = `dismissed by an operator: (reason hidden, ${REASON.length} characters: admin.showPersonalData is off)`;
      assert.equal(event.skipReason, hidden);
      const detail = await request(h, `/admin/api/events/${id}`, { headers: bearer });
      assert.equal(obj(detail.body).skipReason, hidden);
      assert.ok(!detail.text.includes('Nyokabi'), 'the reason is not in the detail');
      const audit = h.logLines.map((line) => JSON.parse(line)).find((l) => l.msg === 'dead row dismissed by admin');
      assert.deepEqual(audit?.rowIds, [id]);
      assert.equal(audit?.reasonLength, REASON.length);
      assert.equal(audit?.remoteAddress, '127.0.0.1');
      assert.ok(!h.logLines.join('\n').includes('Nyokabi'), 'the reason is not in the log');
      // In the list too, so the page can offer the undo.
      const listed = await request(h, '/admin/api/events?find=Patient/dismiss-1', { headers: bearer });
      assert.equal(obj((obj(listed.body).events as unknown[])[0]).dismissed, true);
      assert.ok(!listed.text.includes('Nyokabi'), 'the reason is not in the list');

      const again = await dismiss(id, json('twice'));
      assert.equal(again.status, 409);
      assert.match(String(obj(again.body).error), /is skipped, not dead/);
    });

    it('says in its answer when OpenCRVS may hold the row although it has no tracking id', async () => {
      // A single call (createAndNotify) whose answer was lost, then a 400: dead, with no event id or tracking id.
      const { row } = h.ledger.recordEvent(eventInput('dismiss-may-stand'));
      const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 'no answer' };
      settleRow(h.ledger, row.id, { outcome: 'retry', nextRunAt: 0, error: timeout }, { step: 'createAndNotify' });
      const refused = { classification: 'permanent' as const, kind: 'bad-request', status: 400, message: 'refused' };
      settleRow(h.ledger, row.id, { outcome: 'dead', error: refused }, { step: 'createAndNotify' });
      assert.equal(h.ledger.get(row.id)?.trackingId, null);
      const res = await dismiss(row.id, json('a duplicate'));
      assert.equal(res.status, 200);
      assert.match(
        String(obj(res.body).note),
        /^an earlier attempt may have been taken by OpenCRVS \(its answer was lost\)/,
      );
      // A row that never reached OpenCRVS (the one dismissed above, read invalid) carries no note.
      const plain = h.ledger.recordInvalid({
        sourceId: 'emr',
        eventType: 'birth',
        subjectKey: 'Patient/dismiss-2',
        sourceRef: 'Encounter/dismiss-2',
        mappingId: 'birth.fhir',
        errors: [{ field: 'child.gender', message: 'not one of male, female, unknown' }],
      }).row.id;
      const none = await dismiss(plain, json('a test record'));
      assert.equal(none.status, 200);
      assert.equal(obj(none.body).note, undefined);
    });

    it('undoes a dismissal: the row is dead again with the error it died with; nothing else is restored', async () => {
      const undo = (rowId: number, headers: Record<string, string> = bearer) =>
        request(h, `/admin/api/events/${rowId}/undismiss`, { method: 'POST', headers });
      const notDismissed = await undo(h.deliveredId);
      assert.equal(notDismissed.status, 409);
      assert.match(String(obj(notDismissed.body).error), /state is delivered, not dismissed/);
      assert.equal((await undo(99999)).status, 404);
      assert.equal((await undo(id, { ...basic(TOKEN), Origin: 'https://evil.example' })).status, 403);
      assert.equal(h.ledger.get(id)?.state, 'skipped');

      // From another address than the tests' usual one: the audit line names the one the request came from.
      const res = await requestFrom(h, '127.0.0.3', `/admin/api/events/${id}/undismiss`, bearer, 'POST');
      assert.equal(res.status, 200, res.text);
      const event = obj(obj(JSON.parse(res.text)).event);
      assert.equal(event.state, 'dead');
      assert.equal(event.dismissed, false);
      assert.equal(event.skipReason, null);
      assert.match(String(obj(event.lastError).message), /child\.gender/);
      const audit = h.logLines.map((line) => JSON.parse(line)).find((l) => l.msg === 'dismissal undone by admin');
      assert.deepEqual(audit?.rowIds, [id]);
      assert.equal(audit?.remoteAddress, '127.0.0.3');
      assert.equal((await undo(id)).status, 409, 'dead now: nothing to undo');
    });
  });

  // Last: it adds a row of its own, which the counts above do not expect.
  it('lists the rows of a source taken out of the config that the ledger still holds', async () => {
    const retired = h.ledger.recordEvent({
      sourceId: 'old-emr',
      eventType: 'birth',
      subjectKey: 'Patient/retired-1',
      sourceRef: 'Encounter/retired-1',
      payloadHash: 'retired',
      payload: { declaration: {}, office: 'office-1' },
    }).row.id;
    const res = await request(h, '/admin/api/events?source=old-emr', { headers: bearer });
    assert.equal(res.status, 200);
    assert.deepEqual(
      list(obj(res.body).events).map((e) => obj(e).id),
      [retired],
    );
  });
});

describe('admin routes guessed at from many addresses', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ token: TOKEN, showPersonalData: false });
  });
  after(() => h.close());

  it('compares no more than 100 wrong tokens a minute from all addresses together; an open page goes on', async () => {
    const opened = await requestFrom(h, '127.0.1.99', '/admin', { ...basic(TOKEN), 'Sec-Fetch-Site': 'none' });
    const cookie = (opened.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    assert.match(cookie, /^bridge_admin_session=/);
    // 12 addresses, 10 wrong tokens each at once: each within its own limit, 120 together.
    const guesses: Array<Promise<{ status: number }>> = [];
    for (let a = 1; a <= 12; a++)
      for (let i = 0; i < 10; i++)
        guesses.push(requestFrom(h, `127.0.1.${a}`, '/admin/api/summary', { Authorization: `Bearer g-${a}-${i}` }));
    const statuses = (await Promise.all(guesses)).map((res) => res.status);
    assert.equal(statuses.filter((s) => s === 401).length, 100, 'compared and wrong');
    assert.equal(statuses.filter((s) => s === 429).length, 20, 'refused uncompared');
    // A new address, with the right token: not compared until the minute is over.
    const late = await requestFrom(h, '127.0.1.50', '/admin/api/summary', bearer);
    assert.equal(late.status, 429);
    const retryAfter = Number(late.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
    // The operator's open page is not a guess.
    assert.equal((await requestFrom(h, '127.0.1.99', '/admin/api/summary', { Cookie: cookie })).status, 200);
    const said = h.logLines.filter((line) => line.includes('too many wrong tokens from all addresses together'));
    assert.equal(said.length, 1, said.join('\n'));
    assert.equal(JSON.parse(said[0] ?? '{}').level, 'warn');
  });
});

describe('admin routes with showPersonalData', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ token: TOKEN, showPersonalData: true });
  });
  after(() => h.close());

  it('includes the declaration and the values OpenCRVS echoed in the detail', async () => {
    const detail = obj((await request(h, `/admin/api/events/${h.deadId}`, { headers: bearer })).body);
    const declaration = obj(detail.declaration);
    assert.deepEqual(declaration['child.name'], { firstname: FIRSTNAME, surname: 'Otieno' });
    assert.match(String(obj(detail.lastError).message), new RegExp(FIRSTNAME));
    const summary = obj((await request(h, '/admin/api/summary', { headers: bearer })).body);
    assert.equal(summary.showPersonalData, true);
  });

  it('shows a dismissal’s reason as the operator typed it', async () => {
    const reason = 'duplicate of Nyokabi Kamau';
    const dismissed = h.ledger.dismiss([h.deadId], reason);
    assert.deepEqual(dismissed.dismissed, [h.deadId]);
    const detail = obj((await request(h, `/admin/api/events/${h.deadId}`, { headers: bearer })).body);
    assert.equal(detail.skipReason, `dismissed by an operator: ${reason}`);
    const listed = obj((await request(h, '/admin/api/events?state=skipped', { headers: bearer })).body);
    assert.equal(obj(list(listed.events)[0]).skipReason, `dismissed by an operator: ${reason}`);
  });
});

describe('admin replay of a failed row (an outage over)', () => {
  let dir: string;
  let ledger: Ledger;
  let server: Server;
  let h: Harness;
  const logLines: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admin-failed-'));
    ledger = openLedger(join(dir, 'bridge.db'));
    // The bridge's own replay (sources/replay.ts), with no source to read: a failed row needs none.
    const target: AdminTarget = {
      ledger,
      counts: () => ledger.counts(),
      held: () => undefined,
      sourceStatuses: () => [],
      replay: (ids) => replayRows({ ledger, runners: new Map(), logger: silentLogger }, ids),
    };
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => logLines.push(line) } });
    const app = createHttpApp(
      [{ path: '/admin', router: adminRoutes(target, { token: TOKEN, showPersonalData: false }, { logger }) }],
      silentLogger,
    );
    const listening = await listen(app, 0, '127.0.0.1');
    server = listening.server;
    h = { base: `http://127.0.0.1:${listening.port}` } as Harness;
  });
  after(async () => {
    await closeServer(server, 1000);
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes it due now (409 for a row neither dead nor failed), and logs it by row id', async () => {
    const { row } = ledger.recordEvent(eventInput('f1'));
    const later = Date.now() + 3_600_000; // its backoff: delivery.maxDelayMs
    settleRow(ledger, row.id, {
      outcome: 'retry',
      nextRunAt: later,
      error: { classification: 'retryable', kind: 'server', status: 503, message: 'Service Unavailable' },
      unreached: true,
    });
    const waiting = ledger.get(row.id);
    assert.deepEqual([waiting?.state, waiting?.nextRunAt], ['failed', later]);
    // The gateway's 503 is an attempt, not one toward delivery.maxAttempts: both shown, in the list and the detail.
    const shown = obj((await request(h, `/admin/api/events/${row.id}`, { headers: bearer })).body);
    assert.deepEqual([shown.attempts, shown.countedAttempts], [1, 0]);
    // Its attempt list says which of them was not counted (the page: "1 (not counted)").
    assert.deepEqual(
      list(shown.attemptHistory).map((a) => obj(a).unreached),
      [true],
    );
    const listed = list(obj((await request(h, '/admin/api/events?state=failed', { headers: bearer })).body).events)
      .map(obj)
      .find((e) => e.id === row.id);
    assert.deepEqual([listed?.attempts, listed?.countedAttempts], [1, 0]);
    const res = await request(h, `/admin/api/events/${row.id}/replay`, { method: 'POST', headers: bearer });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(obj(res.body).requeued, [row.id]);
    const due = ledger.get(row.id);
    assert.equal(due?.state, 'failed');
    assert.ok((due?.nextRunAt ?? Infinity) <= Date.now(), 'due now');
    assert.equal(due?.attempts, waiting?.attempts, 'its attempts kept: the retry it was waiting for');
    const audit = logLines.map((line) => JSON.parse(line)).find((l) => l.msg === 'failed row made due now by admin');
    assert.deepEqual(audit?.rowIds, [row.id]);

    const { row: pending } = ledger.recordEvent(eventInput('f2'));
    const refused = await request(h, `/admin/api/events/${pending.id}/replay`, { method: 'POST', headers: bearer });
    assert.equal(refused.status, 409);
    assert.match(String(obj(refused.body).error), /is pending, not dead or failed/);
  });
});
