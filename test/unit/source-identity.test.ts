// What the ledger keeps as a source's and OpenCRVS's address: comparable across spellings of the same
// address, and never a secret (credentials or a query string in a URL).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { openCrvsIdentity, sourceIdentity } from '../../src/sources/identity.js';
import { normalisedUrl } from '../../src/util/url.js';

const source = (kind: 'fhir' | 'dhis2', baseUrl: string, program?: string) =>
  ({ id: 's', kind, baseUrl, ...(program ? { dhis2: { program, fields: '*' } } : {}) }) as SourceSettings;

describe('source and OpenCRVS identity', () => {
  it('keeps origin and path only: no credentials, query or fragment, no trailing slash', () => {
    assert.equal(
      normalisedUrl('https://user:secret@EMR.example.org:443/fhir/?token=abc#x'),
      'https://emr.example.org/fhir',
    );
    assert.equal(
      normalisedUrl('http://emr.example.org:8080/openmrs/ws/fhir2/R4/'),
      'http://emr.example.org:8080/openmrs/ws/fhir2/R4',
    );
    // What is no URL loses the same parts (doctor shows it, the ledger would record it): never the credentials.
    assert.equal(normalisedUrl('http://user:secret@emr host/fhir/?token=abc#x'), 'http://emr host/fhir');
  });

  it('a DHIS2 source is its server, with or without /api, and its programme', () => {
    assert.equal(
      sourceIdentity(source('dhis2', 'https://dhis2.example.org/api/')),
      sourceIdentity(source('dhis2', 'https://dhis2.example.org')),
    );
    assert.equal(
      sourceIdentity(source('dhis2', 'https://dhis2.example.org')),
      'https://dhis2.example.org program IpHINAT79UW',
    );
    assert.notEqual(
      sourceIdentity(source('dhis2', 'https://dhis2.example.org', 'IpHINAT79UW')),
      sourceIdentity(source('dhis2', 'https://dhis2.example.org', 'WSGAb5XwJ3Y')),
    );
    assert.equal(sourceIdentity(source('fhir', 'https://emr.example.org/fhir/')), 'https://emr.example.org/fhir');
  });

  it('OpenCRVS is its events URL (a domain gives one)', () => {
    const settings = { eventsUrl: 'https://register.farajaland.opencrvs.org/api/events/' };
    assert.equal(openCrvsIdentity(settings as never), 'https://register.farajaland.opencrvs.org/api/events');
  });
});
