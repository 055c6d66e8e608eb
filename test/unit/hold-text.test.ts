// A held queue is told in the same words by `ledger`, `sync` and `doctor` (src/ledger/hold-text.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heldSince } from '../../src/ledger/index.js';

describe('heldSince', () => {
  it('names the time, the reason and the row to look at, with the command that shows it', () => {
    assert.equal(
      heldSince({ since: 0, reason: 'unauthorized (HTTP 401): bad client', rowId: 7 }),
      "since 1970-01-01T00:00:00.000Z: unauthorized (HTTP 401): bad client (shown by row #7, which the probe tries again: ledger --find '#7')",
    );
  });

  it('for an outage, names the first row out of reach without saying the probe re-tries it (it sends none)', () => {
    const text = heldSince({
      since: 0,
      reason: 'OpenCRVS out of reach: network: UND_ERR_SOCKET',
      rowId: 32,
      outage: true,
    });
    assert.equal(
      text,
      "since 1970-01-01T00:00:00.000Z: OpenCRVS out of reach: network: UND_ERR_SOCKET (first seen by row #32: ledger --find '#32')",
    );
  });

  it('names no row when no attempt showed the problem', () => {
    assert.equal(heldSince({ since: 0, reason: 'forbidden' }), 'since 1970-01-01T00:00:00.000Z: forbidden');
  });
});
