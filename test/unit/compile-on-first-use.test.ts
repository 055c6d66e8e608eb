// Validators compiled at their first call, not when their module loads (every command loaded them).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { compileOnFirstUse } from '../../src/util/compile-on-first-use.js';

describe('compileOnFirstUse', () => {
  it('compiles at the first call, once, and gives the last call’s errors', () => {
    let compiles = 0;
    const validate = compileOnFirstUse(() => {
      compiles++;
      return new Ajv().compile<{ n: number }>({
        type: 'object',
        required: ['n'],
        properties: { n: { type: 'number' } },
      });
    });
    // A getter's value, read afresh (assert.equal narrows a property read to null).
    const errors = () => validate.errors;
    assert.equal(compiles, 0);
    assert.equal(errors(), null);
    assert.equal(validate({ n: 'one' }), false);
    assert.equal(errors()?.[0]?.instancePath, '/n');
    assert.equal(validate({ n: 1 }), true);
    assert.equal(errors(), null);
    assert.equal(validate({}), false);
    assert.equal(errors()?.[0]?.keyword, 'required');
    assert.equal(compiles, 1);
  });
});
