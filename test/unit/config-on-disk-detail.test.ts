// /readyz's config-on-disk detail names files by their base names: anyone who reaches the port reads it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseNamesOnly } from '../../src/config/on-disk.js';

describe('config-on-disk detail', () => {
  it('cuts absolute paths to their base names, and leaves URLs and key paths alone', () => {
    assert.equal(
      baseNamesOnly(
        '/etc/bridge/bridge.yaml, /srv/maps/birth.yaml changed on disk; the new version would NOT load: ' +
          '/etc/bridge/bridge.yaml: sources[0].mappings[0]: no mapping file at /srv/maps/added.yaml',
      ),
      'bridge.yaml, birth.yaml changed on disk; the new version would NOT load: ' +
        'bridge.yaml: sources[0].mappings[0]: no mapping file at added.yaml',
    );
    const url = 'sources[0].baseUrl: cannot reach https://emr.example/fhir/R4 (see "/run/secrets/emr_token")';
    assert.equal(baseNamesOnly(url), 'sources[0].baseUrl: cannot reach https://emr.example/fhir/R4 (see "emr_token")');
    assert.equal(baseNamesOnly('bridge.yaml changed on disk'), 'bridge.yaml changed on disk');
  });
});
