// The order of a source's evaluations (src/sources/evaluation-order.ts): which commits are overtaken,
// and that what it remembers goes once no session could be overtaken by it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationOrder } from '../../src/sources/evaluation-order.js';

describe('EvaluationOrder', () => {
  it('overtakes a session by a commit made after it began, by any other session, but not by its own', () => {
    const order = new EvaluationOrder();
    const older = order.begin();
    const newer = order.begin();
    order.commit(newer, 'birth\nPatient/1');
    assert.equal(order.overtaken(older, 'birth\nPatient/1'), true, 'begun earlier, committing later');
    assert.equal(order.overtaken(newer, 'birth\nPatient/1'), false, 'its own commit');
    assert.equal(order.overtaken(older, 'death\nPatient/1'), false, 'another event type of the record');
    order.commit(older, 'birth\nPatient/2');
    assert.equal(order.overtaken(newer, 'birth\nPatient/2'), true, 'begun earlier and committed after it began');
  });

  it('does not overtake a session by a commit made before it began', () => {
    const order = new EvaluationOrder();
    const first = order.begin();
    const keepOpen = order.begin();
    order.commit(first, 'birth\nPatient/1');
    order.end(first);
    const later = order.begin();
    assert.equal(order.overtaken(later, 'birth\nPatient/1'), false);
    assert.equal(order.overtaken(keepOpen, 'birth\nPatient/1'), true);
  });

  it('forgets commits once every session that began before them has ended', () => {
    const order = new EvaluationOrder();
    const a = order.begin();
    const b = order.begin();
    order.commit(b, 'birth\nPatient/1');
    const c = order.begin();
    order.commit(c, 'birth\nPatient/2');
    order.end(b);
    assert.equal(order.overtaken(a, 'birth\nPatient/1'), true, 'a is still open');
    assert.equal(order.remembered, 2);
    order.end(a);
    assert.equal(order.remembered, 1, 'Patient/1 was committed before c, the only session open, began');
    // Only c is open: Patient/1 was committed before c began, Patient/2 by c itself.
    const d = order.begin();
    assert.equal(order.overtaken(d, 'birth\nPatient/1'), false);
    assert.equal(order.overtaken(c, 'birth\nPatient/1'), false);
    order.commit(d, 'birth\nPatient/2');
    assert.equal(order.overtaken(c, 'birth\nPatient/2'), true);
    order.end(c);
    order.end(d);
    assert.equal(order.remembered, 0);
  });

  it('remembers nothing while one session runs alone', () => {
    const order = new EvaluationOrder();
    const alone = order.begin();
    for (let id = 0; id < 100; id++) order.commit(alone, `birth\nPatient/${id}`);
    assert.equal(order.remembered, 0);
  });

  it('keeps at most its bound of subjects, the oldest going first', () => {
    const order = new EvaluationOrder(2);
    const older = order.begin();
    const newer = order.begin();
    for (const id of [1, 2, 3]) order.commit(newer, `birth\nPatient/${id}`);
    assert.deepEqual(
      [1, 2, 3].map((id) => order.overtaken(older, `birth\nPatient/${id}`)),
      [false, true, true],
    );
  });
});
