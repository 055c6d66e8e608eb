// The shipped schemas against the JSON Schema meta-schema, and the validators of the configuration and the
// mapping files compiled ahead from theirs: no command checks the one or compiles the other at start any more
// (scripts/schema-validators.mjs, mapping/profile.ts), so this is where a schema edit without its validator's
// is caught.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createAjv } from '../../src/config/ajv.js';
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

  it('the generated validators are what scripts/schema-validators.mjs makes of config and mapping schemas', () => {
    const script = fileURLToPath(new URL('../../scripts/schema-validators.mjs', import.meta.url));
    const check = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });
});
