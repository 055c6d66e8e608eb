// An attempt slower than the lock timeout (a slow OpenCRVS, a long opencrvs.timeoutMs) is alive: its
// worker renews the lock while it runs, so another process's stale-lock check does not take the row
// back and send it a second time in parallel. `sync --once` (runUntilIdle) waits a whole round before
// its next maintenance, so the renewal cannot wait for the loop.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { FakeOpenCrvs, TEST_DELIVERY_SETTINGS } from './delivery-fake-api.js';
import { eventInput, tempLedger } from './ledger-helpers.js';

describe('locks of attempts in flight', () => {
  let ledger: Ledger;
  let path: string;
  let cleanup: () => void;
  beforeEach(() => {
    ({ ledger, path, cleanup } = tempLedger());
  });
  afterEach(() => cleanup());

  for (const mode of ['runUntilIdle', 'start'] as const) {
    it(`${mode}: a slow attempt keeps its lock against another process's stale-lock check`, async () => {
      const api = new FakeOpenCrvs();
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const notify = api.notify.bind(api);
      api.notify = async (input) => {
        await gate;
        return notify(input);
      };
      const { row } = ledger.recordEvent(eventInput('slow'));
      // A 1 s lock timeout (renewed every third of it) against an attempt held for 2.5 s. Not shorter: on a
      // loaded machine (a fresh-clone CI beside other work) a 300 ms timeout was outlived by event-loop
      // stalls alone, and the row was taken back from a live attempt for that reason, not this one.
      const settings = { ...TEST_DELIVERY_SETTINGS, lockTimeoutSeconds: 1, pollIntervalMs: 5_000 };
      const worker = createDeliveryWorker({ ledger, api, settings, workerId: 'w-a' });
      const other = openLedger(path);
      try {
        let run: Promise<unknown> = Promise.resolve();
        if (mode === 'runUntilIdle') run = worker.runUntilIdle({ timeoutMs: 30_000 });
        else worker.start();
        let reset = 0;
        for (let waited = 0; waited < 2500; waited += 50) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          reset += other.resetStaleLocks(1000);
        }
        assert.equal(ledger.get(row.id)?.state, 'delivering');
        release();
        if (mode === 'start') {
          while (ledger.get(row.id)?.state === 'delivering') await new Promise((resolve) => setTimeout(resolve, 20));
          await worker.stop();
        } else await run;
        assert.equal(reset, 0, 'taken back from a live attempt');
        assert.equal(ledger.get(row.id)?.state, 'delivered');
        assert.equal(api.count('notify'), 1);
      } finally {
        release();
        await worker.stop();
        other.close();
      }
    });
  }
});
