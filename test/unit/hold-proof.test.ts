// Which answers to the hold probe's re-try end which hold (src/delivery/hold-proof.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { holdDisproved, type ProbeAnswer } from '../../src/delivery/hold-proof.js';

const created: ProbeAnswer = { call: 'createEvent' };
const notified: ProbeAnswer = { call: 'notify' };

describe('hold probe: what a re-try proves', () => {
  it("refused credentials: any call OpenCRVS took them for, a withdrawal check's create too", () => {
    assert.equal(holdDisproved({ kind: 'unauthorized' }, [created]), true);
    assert.equal(holdDisproved({ kind: 'unauthorized' }, [{ call: 'notify', refused: 'forbidden' }]), true);
    assert.equal(holdDisproved({ kind: 'unauthorized' }, [{ call: 'createEvent', refused: 'unauthorized' }]), false);
    assert.equal(holdDisproved({ kind: 'unauthorized' }, []), false, 'no call: withdrawn without asking OpenCRVS');
  });

  it('a scope refused: only a NOTIFY taken, not the create a withdrawal check or a lookup makes', () => {
    assert.equal(holdDisproved({ kind: 'forbidden' }, [created]), false);
    assert.equal(holdDisproved({ kind: 'forbidden' }, [created, { call: 'notify', refused: 'forbidden' }]), false);
    assert.equal(holdDisproved({ kind: 'forbidden' }, [created, notified]), true);
    assert.equal(holdDisproved({ kind: 'forbidden' }, [{ call: 'createAndNotify' }]), true);
    // Refused for the declaration, or a repeat: the scope was passed.
    assert.equal(holdDisproved({ kind: 'forbidden' }, [{ call: 'notify', refused: 'bad-request' }]), true);
    assert.equal(holdDisproved({ kind: 'forbidden' }, [{ call: 'notify', refused: 'already-notified' }]), true);
  });

  it('an office OpenCRVS did not know: a NOTIFY it did not refuse for its office', () => {
    assert.equal(holdDisproved({ kind: 'unknown-office' }, [created]), false);
    assert.equal(holdDisproved({ kind: 'unknown-office' }, [{ call: 'notify', refused: 'unknown-office' }]), false);
    assert.equal(holdDisproved({ kind: 'unknown-office' }, [created, notified]), true);
  });
});
