// An OpenCRVS answer that quotes the declaration back (a 400 whose text repeats what it was sent), in
// the forms servers and proxies write it: HTML-escaped, JSON-escaped, percent-encoded, upper-cased,
// decomposed. The real client against the simulator over HTTP: neither the ledger's stored error nor
// any log line may hold the names in any of these forms.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { createOpenCrvsClient } from '../../src/opencrvs/client.js';
import type { ErrorEcho } from '../../src/sandbox/opencrvs/types.js';
import { birthEvent, clientSettings, fastDelivery, type TestBed, testBed } from './delivery-helpers.js';

const NAMES = { 'child.name': { firstname: 'Zébulon', surname: "O'Brien-Ndé" } };

/**
 * Each name's trace in any form: ASCII letters are written as they are by every escaping used here, so
 * `bulon` and `brien` (either case) stay wherever the names do. The accented ends are looked for too.
 */
const TRACES = [/bulon/i, /brien/i, /nd(?:é|e\u0301|&#|&e|\\u|%c3|%C3)/i, /z(?:é|e\u0301|&#|&e|\\u|%c3|%C3)/i];

describe('an OpenCRVS error that echoes the declaration', () => {
  let bed: TestBed | undefined;
  afterEach(async () => {
    await bed?.close();
    bed = undefined;
  });

  const forms: ErrorEcho[] = ['plain', 'html', 'json', 'percent', 'upper', 'nfd'];
  for (const echo of forms) {
    it(`keeps the names out of the ledger and the logs when it writes them ${echo}`, async () => {
      bed = await testBed();
      await bed.sim.control.configure({
        faults: { errorRate: 1, errorStatus: 400, errorEcho: echo, operations: ['notify'] },
      });
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
      const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1, NAMES));
      const worker = createDeliveryWorker({
        ledger: bed.ledger,
        api: createOpenCrvsClient(clientSettings(bed.sim), { logger }),
        settings: fastDelivery,
        logger,
      });
      await worker.runUntilIdle({ timeoutMs: 30_000 });
      await worker.stop({ drainMs: 5000 });

      const dead = bed.ledger.get(row.id);
      assert.equal(dead?.state, 'dead');
      const stored = [
        dead?.lastError?.message ?? '',
        ...bed.ledger.attempts(row.id).map((a) => a.error?.message ?? ''),
      ];
      const message = stored[0] ?? '';
      // The answer was read and kept: it is the text the names were in, with them taken out.
      assert.match(message, /could not process declaration/i);
      assert.match(message, /\[redacted\]/);
      const logged = lines.join('');
      assert.match(logged, /delivery failed permanently/);
      for (const text of [...stored, logged])
        for (const trace of TRACES) assert.doesNotMatch(text, trace, `${echo}: ${text.slice(0, 400)}`);
    });
  }

  // Too short to be taken out of free text, but the echo quotes them as the JSON values they were sent as.
  const SHORT = { 'child.name': { firstname: 'Zébulon', middlename: 'G', surname: 'Li' } };
  /** `"G"` or `"Li"` as a JSON string, in any form the simulator writes it (`&quot;`, `\"`, `%22`), any case. */
  const SHORT_TRACE = /(?:"|&quot;|%22)(?:G|Li)(?:\\?"|&quot;|%22)/i;

  for (const echo of forms) {
    it(`keeps a middle initial and a two-letter surname out of the ledger and the logs when it writes them ${echo}`, async () => {
      bed = await testBed();
      await bed.sim.control.configure({
        faults: { errorRate: 1, errorStatus: 400, errorEcho: echo, operations: ['notify'] },
      });
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
      const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1, SHORT));
      const worker = createDeliveryWorker({
        ledger: bed.ledger,
        api: createOpenCrvsClient(clientSettings(bed.sim), { logger }),
        settings: fastDelivery,
        logger,
      });
      await worker.runUntilIdle({ timeoutMs: 30_000 });
      await worker.stop({ drainMs: 5000 });

      const dead = bed.ledger.get(row.id);
      assert.equal(dead?.state, 'dead');
      const stored = [
        dead?.lastError?.message ?? '',
        ...bed.ledger.attempts(row.id).map((a) => a.error?.message ?? ''),
      ];
      const message = stored[0] ?? '';
      // The declaration was quoted and kept, its other words with it: only the values are gone.
      assert.match(message, /could not process declaration/i);
      assert.match(message, /middlename/i);
      const logged = lines.join('');
      assert.match(logged, /delivery failed permanently/);
      for (const text of [...stored, logged]) assert.doesNotMatch(text, SHORT_TRACE, `${echo}: ${text.slice(0, 400)}`);
    });
  }
});
