// The inbox cannot store a notification (the ledger's disk is full, failing, locked or read-only): the
// receiver answered 500 "internal error" with no Retry-After, which FHIR servers take for a failure of the
// notification itself. It must answer 503 with Retry-After and an OperationOutcome, so the EMR resends,
// and say in the log (once a minute, with SQLite's code, no personal data) that the store is the problem.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { subscriptionRoutes } from '../../src/http/subscription-routes.js';
import { storeUnavailable } from '../../src/ledger/db.js';
import { createInbox } from '../../src/ledger/inbox.js';
import { openLedger } from '../../src/ledger/ledger.js';
import { createLogger } from '../../src/observability/logger.js';
import { fhirInbox, type InboxStore } from '../../src/sources/fhir/inbox.js';
import { SubscriptionReceiver } from '../../src/sources/fhir/receiver.js';
import { MemoryInbox } from '../integration/helpers/bridge-stubs.js';

/** The inbox writes fail with this error (a SqliteError, as better-sqlite3 throws them), until cleared. */
class FailingInbox extends MemoryInbox {
  failure: Error | undefined;
  override add(...args: Parameters<MemoryInbox['add']>): number {
    if (this.failure) throw this.failure;
    return super.add(...args);
  }
}

async function withReceiver(
  inbox: InboxStore,
  run: (send: (id: string) => Promise<Response>, log: () => string[]) => Promise<void>,
) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
  const receiver = new SubscriptionReceiver([{ id: 'emr', auth: { secret: 's3cret' }, polled: true }], inbox, logger);
  const app = createHttpApp(
    [{ path: '/fhir-subscription', router: subscriptionRoutes(receiver, 1_048_576, logger) }],
    logger,
  );
  const { server, port } = await listen(app, 0, '127.0.0.1');
  try {
    const send = (id: string) =>
      fetch(`http://127.0.0.1:${port}/fhir-subscription/emr/Patient/${id}`, {
        method: 'PUT',
        headers: { authorization: 'Bearer s3cret', 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Patient', id, name: [{ family: 'Okafor' }] }),
      });
    await run(send, () => lines);
  } finally {
    await closeServer(server, 100);
  }
}

async function assertRetryLater(answer: Response): Promise<void> {
  assert.equal(answer.status, 503);
  assert.equal(answer.headers.get('retry-after'), '30');
  const outcome = (await answer.json()) as { resourceType: string; issue: Array<{ code: string }> };
  assert.equal(outcome.resourceType, 'OperationOutcome');
  assert.equal(outcome.issue[0]?.code, 'transient');
}

describe('subscription receiver: a store that cannot take the notification', () => {
  it('answers 503 with Retry-After when the disk is full, logs it once a minute, and stores again once it can', async () => {
    const inbox = new FailingInbox();
    inbox.failure = new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
    await withReceiver(inbox, async (send, log) => {
      await assertRetryLater(await send('a'));
      await assertRetryLater(await send('b'));
      const errors = log().filter((line) => line.includes('cannot store notifications'));
      assert.equal(errors.length, 1, 'one line a minute, not one a refusal');
      assert.match(errors[0] ?? '', /"level":"error"/);
      assert.match(errors[0] ?? '', /"code":"SQLITE_FULL"/);
      assert.match(errors[0] ?? '', /"source":"emr"/);
      assert.ok(!/Okafor|Patient\/a/.test(log().join('')), 'no personal data in the log');
      assert.ok(!log().some((line) => line.includes('request failed')), 'not logged as a crash');
      inbox.failure = undefined; // space freed
      assert.equal((await send('c')).status, 200);
      assert.equal(inbox.rows.length, 1);
    });
  });

  it('answers 503 from a real ledger opened read-only; any other error stays a 500', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'receiver-store-'));
    try {
      const path = join(dir, 'bridge.db');
      openLedger(path).close();
      const readOnly = new Database(path, { readonly: true });
      try {
        await withReceiver(fhirInbox(createInbox(readOnly)), async (send, log) => {
          await assertRetryLater(await send('a'));
          assert.match(log().join(''), /"code":"SQLITE_READONLY/);
        });
      } finally {
        readOnly.close();
      }
      const inbox = new FailingInbox();
      inbox.failure = new Database.SqliteError('UNIQUE constraint failed', 'SQLITE_CONSTRAINT_UNIQUE');
      await withReceiver(inbox, async (send) => {
        assert.equal((await send('a')).status, 500, 'a bug is not a reason to resend');
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes a full disk, an I/O error, a lock held and a read-only file for a store that cannot write now', () => {
    for (const code of [
      'SQLITE_FULL',
      'SQLITE_IOERR',
      'SQLITE_IOERR_WRITE',
      'SQLITE_BUSY',
      'SQLITE_BUSY_SNAPSHOT',
      'SQLITE_READONLY',
      'SQLITE_READONLY_DBMOVED',
    ])
      assert.equal(storeUnavailable(new Database.SqliteError('x', code)), code);
    for (const code of ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_ERROR', 'SQLITE_FULLY', 'SQLITE_CORRUPT'])
      assert.equal(storeUnavailable(new Database.SqliteError('x', code)), undefined, code);
    assert.equal(storeUnavailable(new Error('x')), undefined);
    assert.equal(storeUnavailable(undefined), undefined);
  });
});
