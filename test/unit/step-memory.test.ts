// The step a source's batched FHIR calls are asked at after a timeout (src/sources/fhir/step-memory.ts):
// one step down per timeout, told once when chunks asked side by side time out together, per client,
// forgotten after its time, and a bounded number of keys a client. And the list length kept after a FHIR
// server refused a longer list with 400 (LengthMemory): it only shrinks while kept, told once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LengthMemory, StepMemory } from '../../src/sources/fhir/step-memory.js';

describe('StepMemory', () => {
  it('steps down once per timeout, per client and key, and forgets after its time', () => {
    const memory = new StepMemory(1_000);
    const client = {};
    const other = {};
    assert.equal(memory.stepOf(client, 'Patient', 0), 0);
    assert.equal(memory.stepDown(client, 'Patient', 0, 0), 1);
    // A chunk asked at the same step times out too: no second step, nothing to tell.
    assert.equal(memory.stepDown(client, 'Patient', 0, 10), undefined);
    assert.equal(memory.stepOf(client, 'Patient', 10), 1);
    assert.equal(memory.stepOf(client, 'Observation', 10), 0, 'per key');
    assert.equal(memory.stepOf(other, 'Patient', 10), 0, 'per client');
    assert.equal(memory.stepDown(client, 'Patient', 1, 20), 2, 'the smaller size timed out too');
    assert.equal(memory.stepOf(client, 'Patient', 1_020), 2);
    assert.equal(memory.stepOf(client, 'Patient', 1_021), 0, 'forgotten: the larger calls come back');
    assert.equal(memory.stepDown(client, 'Patient', 0, 1_022), 1);
  });

  it('keeps a bounded number of keys per client: the one stepped down longest ago goes first', () => {
    const memory = new StepMemory(60_000, 3);
    const client = {};
    const other = {};
    for (const [i, type] of ['A', 'B', 'C'].entries()) memory.stepDown(client, type, 0, i);
    memory.stepDown(other, 'A', 0, 0);
    memory.stepDown(client, 'A', 1, 10); // stepped down again: the newest now
    memory.stepDown(client, 'D', 0, 20); // a fourth key: B goes
    assert.deepEqual(
      ['A', 'B', 'C', 'D'].map((type) => memory.stepOf(client, type, 30)),
      [2, 0, 1, 1],
    );
    assert.equal(memory.stepOf(other, 'A', 30), 1, 'per client');
  });
});

describe('LengthMemory', () => {
  it('keeps the smallest length learnt, per client and key, told once, and forgets after its time', () => {
    const memory = new LengthMemory(1_000);
    const client = {};
    const other = {};
    assert.equal(memory.valuesOf(client, 'Patient', 0), undefined);
    assert.equal(memory.limit(client, 'Patient', 25, 0), true);
    // Two pages bisecting side by side learn the same length: told once.
    assert.equal(memory.limit(client, 'Patient', 25, 10), false);
    // A page that still asked 50 and learnt less keeps the smaller; a larger one never widens it.
    assert.equal(memory.limit(client, 'Patient', 13, 20), true);
    assert.equal(memory.limit(client, 'Patient', 25, 30), false);
    assert.equal(memory.valuesOf(client, 'Patient', 30), 13);
    assert.equal(memory.valuesOf(client, 'Observation', 30), undefined, 'per key');
    assert.equal(memory.valuesOf(other, 'Patient', 30), undefined, 'per client');
    assert.equal(memory.valuesOf(client, 'Patient', 1_020), 13);
    assert.equal(memory.valuesOf(client, 'Patient', 1_021), undefined, 'forgotten: the longer lists come back');
    assert.equal(memory.limit(client, 'Patient', 25, 1_022), true);
  });

  it('keeps a bounded number of keys per client: the one learnt longest ago goes first', () => {
    const memory = new LengthMemory(60_000, 3);
    const client = {};
    for (const [i, type] of ['A', 'B', 'C'].entries()) memory.limit(client, type, 25, i);
    memory.limit(client, 'A', 13, 10); // learnt again: the newest now
    memory.limit(client, 'D', 25, 20); // a fourth key: B goes
    assert.deepEqual(
      ['A', 'B', 'C', 'D'].map((type) => memory.valuesOf(client, type, 30)),
      [13, undefined, 25, 25],
    );
  });

  it('forgets an expired length when learning a larger one', () => {
    const memory = new LengthMemory(1_000);
    const client = {};
    memory.limit(client, 'Patient', 5, 0);
    assert.equal(memory.limit(client, 'Patient', 25, 2_000), true);
    assert.equal(memory.valuesOf(client, 'Patient', 2_000), 25);
  });
});
