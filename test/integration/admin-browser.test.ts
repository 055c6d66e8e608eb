// The admin page in a real browser (headless Chromium through playwright-core) over a real delivery
// path: OpenCRVS simulator, SQLite ledger, production client and delivery worker. An event the country
// configuration rejected is dead; the operator fixes the cause, clicks Replay, and sees it delivered. Its
// write-back job (the real store on the same ledger file) shows abandoned, and Re-queue makes it pending.
// A dead event that must never go is dismissed with the reason the page asks for, and the dismissal undone.
// Log out makes the browser forget the Basic credentials it remembered.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import type { DeliverySettings, OpenCrvsSettings } from '../../src/config/types.js';
import { createDeliveryWorker, type DeliveryWorker } from '../../src/delivery/index.js';
import { type AdminTarget, adminRoutes } from '../../src/http/admin/index.js';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { hashPayload, type Ledger, type LedgerPayload, openLedger } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createOpenCrvsClient, type OpenCrvsClient } from '../../src/opencrvs/index.js';
import { OpenCrvsSandboxControl } from '../../src/sandbox/opencrvs/control.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { WriteBackStore } from '../../src/sources/writeback/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // A name of another site re-pointed at the loopback address, as a DNS-rebinding attacker does.
  '--host-resolver-rules=MAP rebound.test 127.0.0.1',
];
const TOKEN = 'browser-test-admin-token';
const SCREENSHOT = '/tmp/admin.png';
const SCREENSHOT_DEAD = '/tmp/admin-dead.png';
const SCREENSHOT_WRITE_BACK = '/tmp/admin-write-back.png';
const SCREENSHOT_DISMISSED = '/tmp/admin-dismissed.png';
const HOSTILE_REF = 'Encounter/<img src=x onerror="window.__pwned=1">';
// Bounds for waiting on the page: generous for a loaded 2-core machine, never open-ended.
const UI_TIMEOUT_MS = 20_000;

const DELIVERY: DeliverySettings = {
  mode: 'two-step',
  concurrency: 1,
  settleSeconds: 0,
  recheckAfterSeconds: 30,
  maxAttempts: 3,
  maxAgeHours: 24,
  baseDelayMs: 10,
  maxDelayMs: 50,
  pollIntervalMs: 50,
  lockTimeoutSeconds: 60,
  holdProbeSeconds: 60,
  // Outages held only where a test asks (delivery-hold.test.ts): these tests count retries.
  outageHoldSeconds: 3600,
};

/** Polls an element's text until it matches (the page refreshes itself), within a bound. */
async function waitForText(locator: Locator, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    last = (await locator.textContent({ timeout: UI_TIMEOUT_MS })) ?? '';
    if (pattern.test(last)) return;
    await sleep(200);
  }
  assert.fail(`element text never matched ${pattern}; last seen: ${last}`);
}

/** Polls the rows a locator finds until `done` holds for their ids. */
async function waitForRows(locator: Locator, done: (ids: (string | null)[]) => boolean): Promise<(string | null)[]> {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  let ids: (string | null)[] = [];
  while (Date.now() < deadline) {
    ids = await locator.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    if (done(ids)) return ids;
    await sleep(200);
  }
  assert.fail(`rows never settled; last seen: ${ids.join(', ')}`);
}

describe('admin page in headless Chromium', {
  // Skipped on a developer machine without Chromium; in CI (.ci/run installs it) a missing browser fails.
  skip: existsSync(CHROMIUM) || process.env.CI ? false : `no Chromium at ${CHROMIUM}`,
}, () => {
  let dir: string;
  let sim: OpenCrvsSimulator;
  let control: OpenCrvsSandboxControl;
  let ledger: Ledger;
  let writeBacks: WriteBackStore;
  let client: OpenCrvsClient;
  let worker: DeliveryWorker;
  let closeAdmin: () => Promise<void>;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let rowId: number;
  let officeId: string;

  function record(subject: string): number {
    const payload: LedgerPayload = {
      declaration: { 'child.name': { firstname: 'Test', surname: 'Child' }, 'child.dob': '2026-01-02' },
      office: officeId,
    };
    return ledger.recordEvent({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: `Patient/${subject}`,
      sourceRef: `Encounter/${subject}`,
      sourceVersion: '1',
      mappingId: 'birth.fhir',
      payloadHash: hashPayload(payload),
      payload,
    }).row.id;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admin-browser-'));
    sim = await startOpenCrvsSimulator({ port: 0 });
    control = new OpenCrvsSandboxControl(sim.baseUrl);
    ledger = openLedger(join(dir, 'bridge.db'));
    const settings: OpenCrvsSettings = {
      tokenUrl: sim.tokenUrl,
      eventsUrl: sim.eventsUrl,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      version: '2.0',
      country: 'farajaland',
      timeoutMs: 5000,
      tokenRenewBeforeSeconds: 60,
    };
    client = createOpenCrvsClient(settings);
    worker = createDeliveryWorker({ ledger, api: client, settings: DELIVERY, logger: silentLogger });
    const office = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE');
    assert.ok(office, 'the simulator seeds a CRVS office');
    officeId = office.id;
    rowId = record('browser-1');

    // Text from sources reaches the page as text, never as markup.
    ledger.recordSkipped({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/markup',
      sourceRef: HOSTILE_REF,
      reason: '<b>not a birth</b>',
    });

    // OpenCRVS refuses the NOTIFY with a 400 (nothing committed): permanent, so the row goes dead.
    await control.configure({ faults: { errorRate: 1, errorStatus: 400, operations: ['notify'] } });
    await worker.runUntilIdle({ timeoutMs: UI_TIMEOUT_MS });
    assert.equal(ledger.get(rowId)?.state, 'dead');
    // The operator fixes the cause in OpenCRVS.
    await control.configure({ faults: {} });

    writeBacks = new WriteBackStore(join(dir, 'bridge.db'));
    const target: AdminTarget = {
      ledger,
      counts: () => ledger.counts(),
      held: () => worker.held(),
      sourceStatuses: () => [
        {
          id: 'emr',
          kind: 'fhir',
          watermarks: { Encounter: new Date().toISOString() },
          lastPollStartedAt: Date.now(),
          lastPollFinishedAt: Date.now(),
          consecutiveFailures: 0,
        },
      ],
      replay: async (ids) => {
        const result = ledger.replay(ids);
        // What "wakes the worker" means here: one pass of the real claim loop.
        if (result.requeued.length > 0) await worker.processNext();
        return result;
      },
      writeBacks: {
        sourceIds: () => ['emr'],
        search: (filter) => writeBacks.search(filter),
        get: (id) => writeBacks.get(id),
        counts: () => writeBacks.counts(),
        requeue: (id) => writeBacks.requeue(id, Date.now()),
      },
    };
    const app = createHttpApp(
      [{ path: '/admin', router: adminRoutes(target, { token: TOKEN, showPersonalData: false }) }],
      silentLogger,
    );
    const { server, port } = await listen(app, 0, '127.0.0.1');
    base = `http://127.0.0.1:${port}`;
    closeAdmin = () => closeServer(server, 1000);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    // Basic auth: the browser answers the page's challenge and re-sends it on the page's fetch() calls.
    context = await browser.newContext({
      httpCredentials: { username: 'ops', password: TOKEN },
      viewport: { width: 1400, height: 1000 },
    });
    page = await context.newPage();
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await closeAdmin?.();
    await worker?.stop({ drainMs: 1000 });
    writeBacks?.close();
    client?.close?.();
    ledger?.close();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the dead event, replays it on click and shows it delivered', async () => {
    await page.goto(`${base}/admin`);
    const deadRow = page.locator(`#dead tr[data-id="${rowId}"]`);
    await deadRow.waitFor({ timeout: UI_TIMEOUT_MS });
    assert.match((await deadRow.textContent()) ?? '', /permanent \/ bad-request \(HTTP 400\)/);
    const eventRow = page.locator(`#events tr[data-id="${rowId}"]`);
    await eventRow.waitFor({ timeout: UI_TIMEOUT_MS });
    assert.match((await eventRow.textContent()) ?? '', /dead/);

    assert.match((await page.locator('#events tbody').textContent()) ?? '', /<img src=x onerror=/);
    assert.match((await page.locator('#events tbody').textContent()) ?? '', /<b>not a birth<\/b>/);
    assert.equal(await page.locator('#events img, #events b').count(), 0);
    await page.screenshot({ path: SCREENSHOT_DEAD, fullPage: true });
    await deadRow.getByRole('button', { name: `Replay event ${rowId}` }).click();

    await waitForText(eventRow, /delivered/);
    const row = ledger.get(rowId);
    assert.equal(row?.state, 'delivered');
    assert.ok(row?.trackingId);
    assert.match((await eventRow.textContent()) ?? '', new RegExp(row.trackingId));
    await page.getByText('No dead letters.').waitFor({ timeout: UI_TIMEOUT_MS });
  });

  it('opens the detail panel with ids and attempts, and keeps the declaration hidden', async () => {
    await page
      .getByRole('button', { name: `Show details of event ${rowId}` })
      .first()
      .click();
    const detail = page.locator('#detail');
    await detail.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    const text = (await detail.textContent()) ?? '';
    const row = ledger.get(rowId);
    assert.ok(row?.eventId && row.trackingId);
    assert.ok(text.includes(row.eventId), 'OpenCRVS event id shown');
    assert.ok(text.includes(row.trackingId), 'tracking id shown');
    assert.ok(text.includes(row.notifyTransactionId), 'notify transaction id shown');
    assert.match(text, /Hidden: personal data is not shown/);
    assert.equal(await page.locator('#attempts tbody tr.attempt').count(), 2);
    assert.match((await page.locator('#attempts tbody tr.attempt-error').first().textContent()) ?? '', /HTTP 400/);
    assert.equal(text.includes('Test'), false);
    assert.equal(text.includes('2026-01-02'), false);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it('finds the event by its tracking ID, then by its EMR record, and clears the search', async () => {
    const row = ledger.get(rowId);
    assert.ok(row?.trackingId);
    const events = page.locator('#events tbody tr[data-id]');
    assert.ok((await waitForRows(events, (ids) => ids.length > 1)).includes(String(rowId)));
    for (const find of [row.trackingId, row.subjectKey]) {
      await page.locator('#f-find').fill(find);
      await page.locator('#filters button[type="submit"]').click();
      assert.deepEqual(await waitForRows(events, (ids) => ids.length === 1), [String(rowId)], find);
    }
    // A record with no row: the dry run that says why the mappings did not take it (or go-live), named.
    await page.locator('#f-find').fill('emr:Patient/not-recorded');
    await page.locator('#filters button[type="submit"]').click();
    await waitForText(page.locator('#events tbody'), /opencrvs-bridge map --ref Patient\/not-recorded reads it/);
    assert.match((await page.locator('#events tbody').textContent()) ?? '', /before the source's go-live/);
    // Changed after notification: none of these rows.
    await page.locator('#f-find').fill('');
    await page.locator('#f-updated').check();
    await page.locator('#filters button[type="submit"]').click();
    await waitForText(page.locator('#events tbody'), /^No events match\.$/);
    await page.locator('#filters button[type="reset"]').click();
    await waitForRows(events, (ids) => ids.length > 1);
  });

  it('shows the abandoned write-back in its section and in the detail, and re-queues it on click', async () => {
    const row = ledger.get(rowId);
    assert.ok(row?.trackingId);
    // What the runner leaves behind when the source refuses for good (one attempt, a permanent error).
    assert.ok(writeBacks.enqueue(rowId, 'emr', row.trackingId, Date.now()));
    const [claim] = writeBacks.claimDue(10, Date.now(), 60_000);
    assert.ok(claim);
    assert.ok(writeBacks.done(claim, 'abandoned', Date.now(), 'FHIR write-back: Patient browser-1 no longer exists'));

    const jobRow = page.locator(`#write-backs tr[data-row-id="${rowId}"]`);
    await jobRow.waitFor({ timeout: UI_TIMEOUT_MS });
    await waitForText(jobRow, /abandoned/);
    const text = (await jobRow.textContent()) ?? '';
    assert.ok(text.includes(row.trackingId), 'tracking id shown');
    assert.match(text, /Patient browser-1 no longer exists/);
    await waitForText(page.locator('#wb-counts-line'), /0 written, 0 already held the ID, 0 pending, 1 abandoned/);

    await jobRow.getByRole('button', { name: `Show details of event ${rowId}` }).click();
    await waitForText(page.locator('#detail-wb'), /abandoned/);
    assert.match((await page.locator('#detail-wb').textContent()) ?? '', /no longer exists/);

    await jobRow.getByRole('button', { name: `Re-queue the write-back of event ${rowId}` }).click();
    await waitForText(jobRow, /pending/);
    await waitForText(page.locator('#message'), /due again/);
    const job = writeBacks.get(rowId);
    assert.equal(job?.outcome, null);
    assert.equal(job?.attempts, 0);
    assert.match(job?.lastError ?? '', /no longer exists/);
    assert.equal(await jobRow.getByRole('button', { name: /Re-queue/ }).count(), 0, 'no button once pending');
    await page.screenshot({ path: SCREENSHOT_WRITE_BACK, fullPage: true });
  });

  // OpenCRVS answers a NOTIFY that repeats a transactionId with the event as stored, so a replayed row
  // must send its NOTIFY under a new transactionId generation (<base>:notify:r1) to be accepted.
  it('replays an event whose NOTIFY the country configuration rejected, once it accepts', async () => {
    const id = record('browser-rejected');
    await control.configure({ actionConfirmation: 'reject' });
    await worker.runUntilIdle({ timeoutMs: UI_TIMEOUT_MS });
    assert.equal(ledger.get(id)?.state, 'dead');
    await control.configure({ actionConfirmation: 'accept' });
    const res = await fetch(`${base}/admin/api/events/${id}/replay`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
      signal: AbortSignal.timeout(UI_TIMEOUT_MS),
    });
    assert.equal(res.status, 200);
    await worker.runUntilIdle({ timeoutMs: UI_TIMEOUT_MS });
    assert.equal(ledger.get(id)?.state, 'delivered');
  });

  it('says when there are more dead letters than the table lists', async () => {
    await page.goto(`${base}/admin`);
    const more = page.locator('#dead-more');
    await page.getByText('No dead letters.').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await more.isVisible(), false);
    for (let i = 0; i < 201; i++) {
      ledger.recordInvalid({
        sourceId: 'emr',
        eventType: 'birth',
        subjectKey: `Patient/many-${i}`,
        sourceRef: `Encounter/many-${i}`,
        mappingId: 'birth.fhir',
        errors: [{ field: 'child.gender', message: 'not one of male, female, unknown' }],
      });
    }
    await page.reload();
    await more.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    assert.equal(await page.locator('#dead tbody tr').count(), 200);
  });

  it('serves the page under localhost too, and refuses it under another site’s name pointed at 127.0.0.1', async () => {
    const { port } = new URL(base);
    const local = await page.goto(`http://localhost:${port}/admin`);
    assert.equal(local?.status(), 200);
    // Its script loaded and its API answered under that name.
    await waitForText(page.locator('#summary-line'), /outstanding/);
    const rebound = await page.goto(`http://rebound.test:${port}/admin`);
    assert.equal(rebound?.status(), 421, 'the listener does not answer to that name');
    assert.match((await page.textContent('body')) ?? '', /does not answer to that host name/);
  });

  it('dismisses a dead event with the reason asked for, and undoes it from its detail', async () => {
    // The newest of the dead rows the test above made: the dead table lists it.
    const id = ledger.findByKey('emr', 'birth', 'Patient/many-200')?.id;
    assert.ok(id !== undefined);
    const answers: Array<string | null> = [];
    const asked: string[] = [];
    page.on('dialog', (dialog) => {
      asked.push(dialog.type());
      const answer = answers.shift();
      void (answer === null || answer === undefined ? dialog.dismiss() : dialog.accept(answer));
    });
    await page.goto(`${base}/admin`);
    const deadRow = page.locator(`#dead tr[data-id="${id}"]`);
    await deadRow.waitFor({ timeout: UI_TIMEOUT_MS });
    const dismiss = deadRow.getByRole('button', { name: `Dismiss event ${id}` });

    // Asked for a reason and cancelled: nothing happens.
    answers.push(null);
    await dismiss.click();
    const deadline = Date.now() + UI_TIMEOUT_MS;
    while (asked.length === 0 && Date.now() < deadline) await sleep(50);
    assert.deepEqual(asked, ['prompt']);
    assert.equal(ledger.get(id)?.state, 'dead');

    answers.push('  test patient, never real ', '');
    await dismiss.click();
    await waitForText(page.locator('#message'), /is dismissed/);
    assert.deepEqual(asked, ['prompt', 'prompt', 'confirm'], 'the reason is asked for, then the dismissal confirmed');
    await waitForRows(page.locator('#dead tbody tr[data-id]'), (ids) => !ids.includes(String(id)));
    assert.equal(ledger.get(id)?.state, 'skipped');
    assert.equal(ledger.get(id)?.skipReason, 'dismissed by an operator: test patient, never real');

    const events = page.locator('#events tbody tr[data-id]');
    await page.locator('#f-find').fill('Patient/many-200');
    await page.locator('#filters button[type="submit"]').click();
    assert.deepEqual(await waitForRows(events, (ids) => ids.length === 1), [String(id)]);
    // Without showPersonalData the page shows that there is a reason, and its length, never its words.
    await waitForText(events.first(), /skipped.*dismissed by an operator: \(reason hidden, 24 characters/);
    assert.ok(!((await page.locator('#events').textContent()) ?? '').includes('never real'));
    await page.locator('#events').screenshot({ path: SCREENSHOT_DISMISSED });

    await events
      .first()
      .getByRole('button', { name: `Show details of event ${id}` })
      .click();
    const undo = page.locator('#detail-actions').getByRole('button', { name: `Undo the dismissal of event ${id}` });
    await undo.click();
    await waitForText(page.locator('#message'), /dead again/);
    assert.equal(ledger.get(id)?.state, 'dead');
    assert.equal(ledger.get(id)?.skipReason, null);
    await waitForText(events.first(), /dead.*child\.gender/);
    assert.equal(await undo.count(), 0, 'no undo once dead');
    await page
      .locator('#detail-actions')
      .getByRole('button', { name: `Dismiss event ${id}` })
      .waitFor({ timeout: UI_TIMEOUT_MS });
  });
  it('logs out: the browser forgets the token it remembered, and the session ends', async () => {
    // Credentials the browser itself remembers (the context's httpCredentials would answer every challenge).
    const own = await browser.newContext();
    try {
      const tab = await own.newPage();
      const { port } = new URL(base);
      const opened = await tab.goto(`http://ops:${TOKEN}@127.0.0.1:${port}/admin`);
      assert.equal(opened?.status(), 200);
      // The same page without the credentials in its address (a page's fetch() refuses such a base).
      assert.equal((await tab.goto(`${base}/admin`))?.status(), 200);
      const summary = () => tab.evaluate(async () => (await fetch('/admin/api/summary')).status);
      // By the session, then (without it) by the Basic credentials the browser re-sends on its own.
      assert.equal(await summary(), 200);
      await own.clearCookies();
      assert.equal(await summary(), 200, 'the browser remembers the token');
      await tab.goto(`${base}/admin`);
      assert.equal((await own.cookies()).length, 1, 'a session again');

      const [loggedOut] = await Promise.all([
        tab.waitForResponse((r) => r.url() === `${base}/admin/logout`, { timeout: UI_TIMEOUT_MS }),
        tab.getByRole('link', { name: 'Log out' }).click(),
      ]);
      assert.equal(loggedOut.status(), 401);
      assert.deepEqual(await own.cookies(), [], 'the session cookie is gone');
      // The page again: asked without credentials (headless Chromium cancels the prompt that follows).
      const [again] = await Promise.all([
        tab.waitForResponse((r) => r.url() === `${base}/admin`, { timeout: UI_TIMEOUT_MS }),
        tab.goto(`${base}/admin`).catch(() => undefined),
      ]);
      assert.equal(again.status(), 401, 'the browser forgot the token');
      assert.equal(await again.request().headerValue('authorization'), null);
    } finally {
      await own.close();
    }
  });
});
