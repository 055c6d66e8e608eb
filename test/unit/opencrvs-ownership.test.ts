// Telling this client's event from another's: the CREATE action under the create transactionId names its
// creator. Only a creator that is known and differs from the token's `sub` is refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenCrvsError } from '../../src/opencrvs/errors.js';
import { refuseForeignEvent } from '../../src/opencrvs/ownership.js';
import type { EventDocument } from '../../src/opencrvs/types.js';

function event(createdBy: string | undefined, transactionId = 'tx:create'): EventDocument {
  return {
    id: 'ev-1',
    type: 'birth',
    trackingId: 'ABC123',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    actions: [
      { id: 'a1', type: 'CREATE', status: 'Accepted', transactionId, ...(createdBy ? { createdBy } : {}) },
      { id: 'a2', type: 'NOTIFY', status: 'Accepted', transactionId: 'tx:notify', createdBy: 'someone-else' },
    ],
  };
}

describe('refuseForeignEvent', () => {
  it('refuses an event whose CREATE another client made, as a permanent foreign-event error', () => {
    assert.throws(
      () => refuseForeignEvent(event('client-a'), 'tx:create', 'client-b', 'createEvent'),
      (err: unknown) =>
        err instanceof OpenCrvsError &&
        err.kind === 'foreign-event' &&
        err.classification === 'permanent' &&
        /created by another OpenCRVS client \(client-a\), not by this one \(client-b\)/.test(err.message),
    );
  });

  it('takes the event as ours when it is, or when either side is unknown', () => {
    refuseForeignEvent(event('client-b'), 'tx:create', 'client-b', 'createEvent');
    refuseForeignEvent(event(undefined), 'tx:create', 'client-b', 'createEvent');
    refuseForeignEvent(event('client-a'), 'tx:create', undefined, 'createEvent');
    // No CREATE under that transactionId: nothing to compare.
    refuseForeignEvent(event('client-a', 'other:create'), 'tx:create', 'client-b', 'createEvent');
  });

  it("takes another client's event holding a NOTIFY of this client's under one of the caller's ids, naming that client", () => {
    const ours = (id: string) => id === 'tx';
    const holding = event('client-a');
    holding.actions.push({ id: 'a3', type: 'NOTIFY', status: 'Requested', transactionId: 'tx', createdBy: 'client-b' });
    assert.equal(refuseForeignEvent(holding, 'tx:create', 'client-b', 'createAndNotify', undefined, ours), 'client-a');
    // Under the caller's id but made by another client (the other bridge's own NOTIFY): refused.
    const theirs = event('client-a');
    theirs.actions.push({ id: 'a3', type: 'NOTIFY', status: 'Requested', transactionId: 'tx', createdBy: 'client-a' });
    assert.throws(
      () => refuseForeignEvent(theirs, 'tx:create', 'client-b', 'createAndNotify', undefined, ours),
      (err: unknown) => err instanceof OpenCrvsError && err.kind === 'foreign-event',
    );
    // This client's NOTIFY under an id that is not the caller's: refused too.
    assert.throws(
      () => refuseForeignEvent(holding, 'tx:create', 'client-b', 'createAndNotify', undefined, (id) => id === 'other'),
      (err: unknown) => err instanceof OpenCrvsError && err.kind === 'foreign-event',
    );
  });
});
