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

  it('cuts a path with spaces in its folders or its name to its base name', () => {
    assert.equal(
      baseNamesOnly('the ledger file /srv/site data/bridge.db was deleted while the bridge ran: restart'),
      'the ledger file bridge.db was deleted while the bridge ran: restart',
    );
    assert.equal(
      baseNamesOnly('/etc/my  bridge/bridge.yaml, /srv/maps/birth.yaml changed on disk'),
      'bridge.yaml, birth.yaml changed on disk',
    );
    // A path the caller knows is found as written, relative or with spaces in its name.
    assert.equal(
      baseNamesOnly('the ledger file site data/my bridge.db was deleted', ['site data/my bridge.db']),
      'the ledger file my bridge.db was deleted',
    );
    assert.equal(
      baseNamesOnly('/a/b c/x.yaml, /a/b changed on disk', ['/a/b', '/a/b c/x.yaml']),
      'x.yaml, b changed on disk',
    );
    // Words before a later `/` in the sentence are no folder of the path before them.
    assert.equal(
      baseNamesOnly('no mapping file at /srv/maps/added.yaml (see docs/mappings.md)'),
      'no mapping file at added.yaml (see docs/mappings.md)',
    );
  });
});
