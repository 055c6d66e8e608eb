// A delivery worker in its own process, for the crash-safety test: the test SIGKILLs it at random
// moments and starts it again. Usage:
//   node --import tsx test/integration/helpers/worker-child.ts <db> <tokenUrl> <eventsUrl> <clientId> <clientSecret> [concurrency]
// Prints `ready` once the worker runs and `idle` before exiting 0 when no row is left to deliver.
import { createDeliveryWorker } from '../../../src/delivery/index.js';
import { openLedger } from '../../../src/ledger/index.js';
import { createOpenCrvsClient } from '../../../src/opencrvs/client.js';

const [dbPath, tokenUrl, eventsUrl, clientId, clientSecret, concurrency] = process.argv.slice(2);
if (!dbPath || !tokenUrl || !eventsUrl || !clientId || !clientSecret) {
  console.error('usage: worker-child.ts <db> <tokenUrl> <eventsUrl> <clientId> <clientSecret> [concurrency]');
  process.exit(2);
}

const ledger = openLedger(dbPath);
const api = createOpenCrvsClient({
  tokenUrl,
  eventsUrl,
  clientId,
  clientSecret,
  version: '2.0',
  country: 'farajaland',
  timeoutMs: 2000,
  tokenRenewBeforeSeconds: 0,
});
const worker = createDeliveryWorker({
  ledger,
  api,
  workerId: `child-${process.pid}`,
  settings: {
    mode: 'two-step',
    concurrency: Number(concurrency ?? 4),
    settleSeconds: 0,
    recheckAfterSeconds: 30,
    maxAttempts: 1000,
    maxAgeHours: 1,
    baseDelayMs: 10,
    maxDelayMs: 100,
    pollIntervalMs: 20,
    // A killed predecessor's rows come back after a second (the minimum the config allows).
    lockTimeoutSeconds: 1,
    holdProbeSeconds: 1,
    // Outages held only where a test asks (delivery-hold.test.ts): these tests count retries.
    outageHoldSeconds: 3600,
  },
});
worker.start();
process.stdout.write('ready\n');

const finish = async (code: number) => {
  clearInterval(watch);
  await worker.stop({ drainMs: 2000 });
  ledger.close();
  process.exit(code);
};
const watch = setInterval(() => {
  if (ledger.outstanding() === 0) {
    process.stdout.write('idle\n');
    void finish(0);
  }
}, 50);
process.on('SIGTERM', () => void finish(0));
