// The inbox was bounded by count only (100,000 waiting notifications). A backport Bundle naming many
// resources stores nearly its whole body, so at the 1 MB body limit that count is 100 GB of disk. Past a
// byte limit the receiver must answer as at the count limit (503, Retry-After, an OperationOutcome) and
// store nothing, and take notifications again once the waiting ones are processed. Over HTTP, with the
// real ledger.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { subscriptionRoutes } from '../../src/http/subscription-routes.js';
import { migrate } from '../../src/ledger/db.js';
import type { Ledger } from '../../src/ledger/index.js';
import { openLedger } from '../../src/ledger/ledger.js';
import { MIGRATIONS } from '../../src/ledger/migrations/index.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { fhirInbox } from '../../src/sources/fhir/inbox.js';
import { SubscriptionReceiver } from '../../src/sources/fhir/receiver.js';

const SECRET = 's3cret';
const MAX_BYTES = 12_000;

/** An R4 backport event notification naming `count` Patients (an EMR batching events, or a crafted one). */
function backport(count: number, prefix: string): string {
  const status = {
    resourceType: 'Parameters',
    parameter: [{ name: 'type', valueCode: 'event-notification' }],
  };
  const entries = Array.from({ length: count }, (_, i) => ({
    fullUrl: `Patient/${prefix}-${String(i).padStart(40, '0')}`,
  }));
  return JSON.stringify({ resourceType: 'Bundle', type: 'history', entry: [{ resource: status }, ...entries] });
}

/** What the ledger file holds, read apart from the bridge's connection. */
function stored(path: string): { rows: number; waitingBytes: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare<[], { rows: number; waitingBytes: number }>(
        'SELECT COUNT(*) AS rows, TOTAL(CASE WHEN processed_at IS NULL THEN length(CAST(body AS BLOB)) END) AS waitingBytes FROM inbox',
      )
      .get();
    return row ?? { rows: 0, waitingBytes: 0 };
  } finally {
    db.close();
  }
}

async function withReceiver(
  run: (h: { send: (body: string) => Promise<Response>; ledger: Ledger; path: string; log: string[] }) => Promise<void>,
) {
  const dir = mkdtempSync(join(tmpdir(), 'receiver-bytes-'));
  const path = join(dir, 'ledger.db');
  const ledger = openLedger(path);
  const log: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void log.push(line) } });
  const receiver = new SubscriptionReceiver(
    [{ id: 'emr', auth: { secret: SECRET } }],
    fhirInbox(ledger.inbox),
    logger,
    undefined,
    { maxBytes: MAX_BYTES },
  );
  const app = createHttpApp(
    [{ path: '/fhir-subscription', router: subscriptionRoutes(receiver, 1_048_576, logger) }],
    logger,
  );
  const { server, port } = await listen(app, 0, '127.0.0.1');
  try {
    const send = (body: string) =>
      fetch(`http://127.0.0.1:${port}/fhir-subscription/emr`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/fhir+json' },
        body,
        signal: AbortSignal.timeout(10_000),
      });
    await run({ send, ledger, path, log });
  } finally {
    await closeServer(server, 100);
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('subscription receiver: the inbox bounded by bytes', () => {
  it('refuses with 503, Retry-After and an OperationOutcome past the byte limit, storing nothing, until processed', async () => {
    await withReceiver(async ({ send, ledger, path, log }) => {
      // About 5 KB stored each: the third is taken (10 KB waiting, under the limit), the fourth is not.
      for (const prefix of ['a', 'b', 'c']) assert.equal((await send(backport(100, prefix))).status, 200, prefix);
      const before = stored(path);
      assert.equal(before.rows, 3);
      assert.ok(before.waitingBytes >= MAX_BYTES, `${before.waitingBytes} bytes waiting`);
      assert.deepEqual(ledger.inbox.backlog(), { depth: 3, bytes: before.waitingBytes }, 'the tracked bytes');

      const refused = await send(backport(100, 'd'));
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '30');
      const outcome = (await refused.json()) as { resourceType: string; issue: Array<{ code: string }> };
      assert.equal(outcome.resourceType, 'OperationOutcome');
      assert.equal(outcome.issue[0]?.code, 'transient');
      // A small one too: the limit is on what waits, not on the one that comes.
      const small = await send(JSON.stringify({ resourceType: 'Patient', id: 'small' }));
      assert.equal(small.status, 503);
      assert.deepEqual(stored(path), before, 'nothing more stored');

      const warning = log.find((line) => line.includes('inbox full'));
      assert.match(warning ?? '', /"limit":"bytes"/);
      assert.match(warning ?? '', new RegExp(`"bytes":${before.waitingBytes}`));
      assert.ok(!/Patient|small|d-0/.test(log.join('')), 'no resource named in the log');

      // Processed (as the inbox processor marks them): the rows stay a day, their bytes no longer count.
      ledger.inbox.doneAll(
        ledger.inbox.due(10, Date.now()).map((row) => row.id),
        Date.now(),
      );
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // counted again after a second
      assert.equal((await send(backport(100, 'd'))).status, 200);
      assert.equal(stored(path).rows, 4);
    });
  });

  it('counts what is stored, not what was sent: full resources take a few bytes each', async () => {
    await withReceiver(async ({ send, path }) => {
      // 20 KB each on the wire, past the limit alone; stored as the reference it names.
      const text = { status: 'generated', div: `<div>${'x'.repeat(20_000)}</div>` };
      for (let i = 0; i < 20; i++)
        assert.equal((await send(JSON.stringify({ resourceType: 'Patient', id: `p${i}`, text }))).status, 200);
      const after = stored(path);
      assert.equal(after.rows, 20);
      assert.ok(after.waitingBytes < MAX_BYTES / 10, `${after.waitingBytes} bytes waiting`);
    });
  });

  it('counts the notifications a ledger from before migration 018 left waiting, in bytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'receiver-bytes-'));
    const path = join(dir, 'ledger.db');
    try {
      const db = new Database(path);
      try {
        db.pragma('journal_mode = WAL');
        migrate(
          db,
          MIGRATIONS.filter((m) => m.version < 18),
          silentLogger,
          Date.now(),
        );
        const insert = db.prepare(
          'INSERT INTO inbox (source_id, received_at, body, next_attempt_at, processed_at) VALUES (?, 1, ?, 1, ?)',
        );
        // Two bytes a character in UTF-8: bytes are counted, not characters.
        insert.run('emr', JSON.stringify({ kind: 'ping', style: 'é'.repeat(100) }), null);
        insert.run('emr', JSON.stringify({ kind: 'ping', style: 'x'.repeat(5_000) }), 2);
      } finally {
        db.close();
      }
      const ledger = openLedger(path);
      try {
        const waiting = Buffer.byteLength(JSON.stringify({ kind: 'ping', style: 'é'.repeat(100) }));
        assert.deepEqual(ledger.inbox.backlog(), { depth: 1, bytes: waiting });
        ledger.inbox.add('emr', { kind: 'ping', style: 'é' }, 3);
        assert.equal(ledger.inbox.backlog().bytes, waiting + Buffer.byteLength('{"kind":"ping","style":"é"}'));
      } finally {
        ledger.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
