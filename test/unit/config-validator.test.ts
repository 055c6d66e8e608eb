// The shipped schemas against the JSON Schema meta-schema, and the configuration's validator compiled ahead
// from its schema: no command checks the one or compiles the other at start any more (config/ajv.ts,
// scripts/config-validator.mjs), so this is where a schema edit without the validator's is caught.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createAjv, sharedVerboseAjv } from '../../src/config/ajv.js';
import { readProfileJson } from '../../src/config/schema.js';
import { declarationSchema, loadFormProfile } from '../../src/mapping/profile.js';

describe('shipped JSON schemas', () => {
  for (const file of ['config.schema.json', 'mapping.schema.json']) {
    it(`${file} is a valid draft-07 schema`, () => {
      const ajv = createAjv();
      const ok = ajv.validateSchema(readProfileJson(file) as object);
      assert.equal(ok, true, ajv.errorsText(ajv.errors));
    });
  }

  // What the mapping layer validates declarations with, built from each shipped OpenCRVS form profile: its
  // Ajv instance does not check them either (mapping/profile.ts sharedAjv).
  for (const version of ['2.0', '1.9']) {
    for (const event of ['birth', 'death']) {
      it(`the declaration schema of farajaland ${version} ${event} is a valid draft-07 schema`, () => {
        const ajv = createAjv();
        const ok = ajv.validateSchema(declarationSchema(loadFormProfile('farajaland', version, event)));
        assert.equal(ok, true, ajv.errorsText(ajv.errors));
      });
    }
  }

  it('are compiled at start without the meta-schema check', () => {
    // A schema only the meta-schema refuses (a `title` that is no text) compiles: the check is not made.
    assert.doesNotThrow(() => sharedVerboseAjv().compile({ type: 'string', title: 3 }));
    assert.throws(() => createAjv().compile({ type: 'string', title: 3 }), /schema is invalid/);
  });

  it('config-validator.generated.ts is what scripts/config-validator.mjs makes of config.schema.json', () => {
    const script = fileURLToPath(new URL('../../scripts/config-validator.mjs', import.meta.url));
    const check = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });
});
