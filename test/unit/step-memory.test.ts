// The step a source's batched FHIR calls are asked at after a timeout (src/sources/fhir/step-memory.ts):
// one step down per timeout, told once when chunks asked side by side time out together, per client,
// and forgotten after its time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StepMemory } from '../../src/sources/fhir/step-memory.js';

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
});
