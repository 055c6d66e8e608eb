import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { validateNotifyPayload } from '../../src/sandbox/opencrvs/declaration.js';
import { loadForms } from '../../src/sandbox/opencrvs/forms.js';
import { TokenSigner } from '../../src/sandbox/opencrvs/jwt.js';
import { allowsEvent, defaultHealthScopes, hasScopeType } from '../../src/sandbox/opencrvs/scopes.js';
import { loadSeededLocations, locationUuid } from '../../src/sandbox/opencrvs/seed.js';
import { hasValidShape, isEmptyValue } from '../../src/sandbox/opencrvs/value-shapes.js';

const UUID = '0b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

describe('NOTIFY value shapes per field type', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['TEXT', 'Farmer', true],
    ['TEXT', 3, false],
    ['NAME', { firstname: 'Amani', surname: 'Juma', middlename: '' }, true],
    ['NAME', { firstname: null }, true],
    ['NAME', { firstname: 999 }, false],
    ['NAME', 'Amani Juma', false],
    ['DATE', '2025-03-14', true],
    ['DATE', '2025-02-30', false],
    ['DATE', '2025-03-14T00:00:00Z', false],
    ['AGE', { age: 34, asOfDateRef: 'child.dob' }, true],
    ['AGE', { age: 34 }, false],
    ['NUMBER', 3.2, true],
    ['NUMBER', '3.2', false],
    ['NUMBER_WITH_UNIT', { numericValue: 3, unit: 'Days' }, true],
    ['NUMBER_WITH_UNIT', {}, true],
    ['NUMBER_WITH_UNIT', { numericValue: '3' }, false],
    ['CHECKBOX', true, true],
    ['CHECKBOX', 'true', false],
    ['SELECT', 'anything: options are not checked', true],
    ['RADIO_GROUP', 'YES', true],
    ['LOCATION', 'not even a uuid', true],
    ['ADDRESS', { country: 'FAR', addressType: 'DOMESTIC', administrativeArea: UUID }, true],
    ['ADDRESS', { addressType: 'DOMESTIC', administrativeArea: null, streetLevelDetails: { town: null } }, true],
    ['ADDRESS', { addressType: 'INTERNATIONAL', country: 'GBR', streetLevelDetails: { cityOrTown: 'London' } }, true],
    ['ADDRESS', { addressType: 'DOMESTIC', administrativeArea: 'IkYcYBUcyY2' }, false],
    ['ADDRESS', { addressType: 'DOMESTIC', streetLevelDetails: { village: 'x' } }, false],
    ['ADDRESS', { country: 'FAR' }, false],
    ['EMAIL', 'jane.doe@example.com', true],
    ['EMAIL', 'jane..doe@example.com', false],
    ['PHONE', '12', true],
    ['ID', '12', true],
    ['FILE', { path: 'a.pdf', originalFilename: 'a.pdf', type: 'application/pdf' }, true],
    ['FILE', { path: 'a.pdf' }, false],
    ['FILE_WITH_OPTIONS', [{ path: 'a', originalFilename: 'a', type: 'image/png', option: 'NATIONAL_ID' }], true],
    ['FILE_WITH_OPTIONS', [{ path: 'a', originalFilename: 'a', type: 'image/png' }], false],
    ['AUTOCOMPLETE', { label: 'Cholera, unspecified', value: UUID }, true],
    ['AUTOCOMPLETE', 'Cholera', false],
    ['BUTTON', 1, true],
    ['BUTTON', '1', false],
    ['ALPHA_HIDDEN', UUID, true],
    ['HTTP', { loading: false, data: { anything: 1 } }, true],
    ['HTTP', { error: { statusCode: '500' } }, false],
    ['QUERY_PARAM_READER', { data: { code: 'abc' } }, true],
    ['QUERY_PARAM_READER', { data: { code: 1 } }, false],
    ['ID_READER', { data: { nid: '1' } }, true],
    ['DIVIDER', 'text', true],
  ];
  for (const [type, value, expected] of cases) {
    test(`${type} ${expected ? 'accepts' : 'refuses'} ${JSON.stringify(value)}`, () => {
      assert.equal(hasValidShape(type, value), expected);
    });
  }

  test('null is accepted for every field type', () => {
    for (const [type] of cases) assert.equal(hasValidShape(type, null), true, type);
  });

  test('empty values are undefined, an empty string, or an object of empty parts', () => {
    assert.equal(isEmptyValue(''), true);
    assert.equal(isEmptyValue({ firstname: '', surname: undefined }), true);
    assert.equal(isEmptyValue({ firstname: 'A' }), false);
    assert.equal(isEmptyValue(0), false);
    assert.equal(isEmptyValue(null), false);
  });
});

describe('NOTIFY declaration validation against the Farajaland forms', () => {
  const birth20 = loadForms('farajaland', '2.0').get('birth');
  const birth19 = loadForms('farajaland', '1.9').get('birth');
  assert.ok(birth20 && birth19);

  test('required fields are not enforced: an empty declaration passes', () => {
    assert.deepEqual(validateNotifyPayload(birth20, {}, undefined, '2.0'), []);
  });

  test('a malformed value of an empty kind is skipped rather than refused', () => {
    assert.deepEqual(validateNotifyPayload(birth20, { 'child.name': { firstname: '' } }, {}, '2.0'), []);
  });

  test('annotation problems are listed before declaration problems', () => {
    const found = validateNotifyPayload(birth20, { 'x.y': 1 }, { 'review.signature': 'nope' }, '2.0');
    assert.deepEqual(
      found.map((p) => `${p.id}: ${p.message}`),
      ['review.signature: Invalid input', 'x.y: Unexpected field'],
    );
  });

  test('a null review.comment is "Required" in 2.0 and "Required for registration" in 1.9', () => {
    assert.equal(validateNotifyPayload(birth20, {}, { 'review.comment': null }, '2.0')[0]?.message, 'Required');
    assert.equal(
      validateNotifyPayload(birth19, {}, { 'review.comment': null }, '1.9')[0]?.message,
      'Required for registration',
    );
  });

  test('1.9 forms use FACILITY for the place of birth; 2.0 forms use LOCATION', () => {
    assert.equal(birth19.fields.get('child.birthLocation'), 'FACILITY');
    assert.equal(birth20.fields.get('child.birthLocation'), 'LOCATION');
  });
});

describe('scope strings', () => {
  test('v2.0 query-style scopes restrict by event unless event= is absent', () => {
    const scopes = ['type=record.notify&event=birth,death'];
    assert.equal(allowsEvent(scopes, 'record.notify', 'death', '2.0'), true);
    assert.equal(allowsEvent(scopes, 'record.notify', 'marriage', '2.0'), false);
    assert.equal(allowsEvent(scopes, 'record.create', 'birth', '2.0'), false);
    assert.equal(allowsEvent(['type=record.create'], 'record.create', 'anything', '2.0'), true);
  });

  test('v1.9 bracket scopes restrict by event; notification-api is not a record scope', () => {
    const scopes = defaultHealthScopes('1.9');
    assert.equal(allowsEvent(scopes, 'record.notify', 'birth', '1.9'), true);
    assert.equal(allowsEvent(['record.notify[event=death]'], 'record.notify', 'birth', '1.9'), false);
    assert.equal(hasScopeType(['notification-api'], 'record.notify', '1.9'), false);
  });
});

describe('seeded Farajaland locations', () => {
  test('the project copy yields 82 offices, 13 facilities and 84 administrative areas', () => {
    const { locations, administrativeAreas } = loadSeededLocations('farajaland');
    assert.equal(locations.filter((l) => l.locationType === 'CRVS_OFFICE').length, 82);
    assert.equal(locations.filter((l) => l.locationType === 'HEALTH_FACILITY').length, 13);
    assert.equal(administrativeAreas.length, 84);
  });

  test('the test fixture copy gives the same result, and offices hang off their area by UUID', () => {
    const dir = fileURLToPath(new URL('../fixtures/farajaland-locations/', import.meta.url));
    const fixture = loadSeededLocations('farajaland', dir);
    const project = loadSeededLocations('farajaland');
    assert.deepEqual(fixture, project);
    const ibombo = fixture.locations.find((l) => l.externalId === 'xmJJAsGfSTn');
    assert.equal(ibombo?.administrativeAreaId, locationUuid('farajaland', 'RNblUNSnSpQ'));
    const hq = fixture.locations.find((l) => l.externalId === 'LHUYvwY2Aq1');
    assert.equal(hq?.partOf, null);
  });
});

describe('simulator tokens', () => {
  test("a start's tokens are refused by any other start (a restart re-keys), though one key pair signs them all", () => {
    const first = new TokenSigner();
    const { token } = first.issue('client', ['record.notify'], 600);
    assert.equal(first.verify(token).ok, true);
    assert.deepEqual(new TokenSigner().verify(token), { ok: false, reason: 'signature' });
    // The key id is signed over: changed, the signature no longer holds.
    const [, payload, signature] = token.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'another-start' })).toString(
      'base64url',
    );
    assert.deepEqual(first.verify(`${header}.${payload}.${signature}`), { ok: false, reason: 'signature' });
  });
});
