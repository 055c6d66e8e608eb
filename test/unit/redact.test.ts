// Redaction at the logger: whatever a component logs (objects, errors, messages), personal data and
// secrets do not reach the output. Checked on the JSON lines a real logger writes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import type { DestinationStream } from 'pino';
import { ConfigError } from '../../src/config/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { redactDeep, scrubString } from '../../src/observability/redact.js';
import { scrubbedError } from '../../src/observability/scrubbed-error.js';
import { SecretScrubber } from '../../src/observability/secret-scrubber.js';
import { CHILD_NODE_FLAGS, childModule } from '../support/child-source.js';

const JWT =
  'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzY29wZSI6WyJ0eXBlPXJlY29yZC5jcmVhdGUiXSwiZXhwIjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

/** A logger at trace level whose output is kept as text. */
function capture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  const lines: string[] = [];
  const destination: DestinationStream = {
    write(chunk: string) {
      lines.push(chunk);
    },
  };
  return { log: createLogger({ level: 'trace', destination }), text: () => lines.join('') };
}

function assertAbsent(text: string, values: string[]): void {
  for (const value of values) assert.ok(!text.includes(value), `${JSON.stringify(value)} leaked in ${text}`);
}

const PATIENT = {
  resourceType: 'Patient',
  id: 'p1',
  name: [{ given: ['Wanjiku'], family: 'Otieno' }],
  birthDate: '2019-02-12',
  deceasedDateTime: '2024-05-06T10:00:00Z',
  identifier: [{ system: 'urn:mrn', value: 'MRN-777123' }],
  address: [{ line: ['12 Baobab Lane'], city: 'Ilanga', postalCode: '90210' }],
  telecom: [
    { system: 'phone', value: '+260 977 123456' },
    { system: 'email', value: 'w.otieno@example.org' },
  ],
};
const PATIENT_VALUES = [
  'Wanjiku',
  'Otieno',
  '2019-02-12',
  '2024-05-06',
  'MRN-777123',
  'Baobab',
  '90210',
  '977 123456',
  'w.otieno@example.org',
];

describe('redaction of logged objects', () => {
  it('drops names, birth and death dates, identifiers, addresses, phones and emails of a FHIR resource', () => {
    const { log, text } = capture();
    log.info({ patient: PATIENT, resourceType: 'Patient', id: 'p1' }, 'read');
    assertAbsent(text(), PATIENT_VALUES);
    // What is not personal stays, so the line is still useful.
    const line = JSON.parse(text());
    assert.equal(line.patient.id, 'p1');
    assert.equal(line.resourceType, 'Patient');
  });

  it("drops a reference's display, free-text values and a patient's contacts, which hold names", () => {
    const { log, text } = capture();
    log.info(
      {
        encounter: {
          resourceType: 'Encounter',
          status: 'finished',
          subject: { reference: 'Patient/p1', display: 'Wanjiku Otieno' },
          extension: [{ url: 'http://example.org/informant', valueString: 'Achieng Otieno, aunt' }],
        },
        patient: { contact: [{ relationship: [{ text: 'mother' }], organization: { display: 'Amani Clinic' } }] },
        Contact: 'Baraka Otieno +260 977 654321',
      },
      'mapped',
    );
    assertAbsent(text(), ['Wanjiku', 'Achieng', 'Otieno', 'Amani Clinic', 'Baraka', '654321']);
    assert.match(text(), /"reference":"Patient\/p1"/);
    assert.match(text(), /"status":"finished"/);
  });

  it('drops OpenCRVS declaration fields by their field id (child.name, mother.nid, informant.phoneNo, …)', () => {
    const { log, text } = capture();
    const fields = {
      'child.name': { firstname: 'Amani', surname: 'Banda' },
      'child.dob': '2026-11-03',
      'mother.nid': '1234567890',
      'mother.passport': 'ZP998877',
      'informant.phoneNo': '0977123456',
      'informant.email': 'amani.banda@example.com',
      'mother.address': { streetLevelDetails: { street: 'Kafue Road' } },
      'eventDetails.date': '2025-01-31',
      'child.gender': 'female',
    };
    log.warn({ fields, eventType: 'birth' }, 'field problems');
    assertAbsent(text(), [
      'Amani',
      'Banda',
      '2026-11-03',
      '1234567890',
      'ZP998877',
      '0977123456',
      'amani.banda',
      'Kafue',
      '2025-01-31',
    ]);
    assert.equal(JSON.parse(text()).fields['child.gender'], 'female');
  });

  it('drops secrets and tokens by key at any depth, including request headers', () => {
    const { log, text } = capture();
    log.debug(
      {
        a: { b: { c: { d: { clientSecret: 'cs-1', client_secret: 'cs-2', password: 'pw-3', hmacSecret: 'hm-4' } } } },
        headers: { Authorization: `Bearer ${JWT}`, Cookie: 'session=s-5' },
        settings: { accessToken: 'at-6', token: 'tk-7', apiKey: 'ak-8' },
      },
      'settings',
    );
    assertAbsent(text(), ['cs-1', 'cs-2', 'pw-3', 'hm-4', JWT.slice(0, 30), 's-5', 'at-6', 'tk-7', 'ak-8']);
  });

  it("drops an extension's or an Observation's birth date or time, address, name, phone or identifier (value[x])", () => {
    const { log, text } = capture();
    log.info(
      {
        extension: [
          { url: 'http://example.org/mother-birth-date', valueDate: '1994-07-02' },
          { url: 'http://example.org/time-of-birth', valueDateTime: '2026-11-03T04:30:00+02:00' },
          { url: 'http://example.org/birth-time', valueTime: '04:31:07' },
          { url: 'http://example.org/birth-instant', valueInstant: '2025-06-30T02:30:00.000Z' },
          { url: 'http://example.org/place-of-birth', valueAddress: { line: ['Plot 14'], city: 'Chikobo' } },
          { url: 'http://example.org/father', valueHumanName: { family: 'Mwansa' } },
          { url: 'http://example.org/informant-phone', valueContactPoint: { system: 'phone', value: '0971234567' } },
          { url: 'http://example.org/father-nid', valueIdentifier: { system: 'urn:nid', value: 'NID-987654' } },
          { url: 'http://example.org/weight', valueQuantity: { value: 3.2, unit: 'kg' } },
        ],
      },
      'extensions',
    );
    assertAbsent(text(), [
      '1994-07-02',
      '2026-11-03',
      '04:31:07',
      '2025-06-30T02:30',
      'Chikobo',
      'Plot 14',
      'Mwansa',
      '0971234567',
      'NID-987654',
    ]);
    assert.match(text(), /"unit":"kg"/, 'a measurement is no personal data');
  });

  it('drops personal data nested deep inside arrays and bundles', () => {
    const bundle = { resourceType: 'Bundle', entry: [{ fullUrl: 'urn:uuid:1', resource: PATIENT }], total: 1 };
    const out = JSON.stringify(redactDeep({ result: { pages: [{ bundle }] } }));
    assertAbsent(out, PATIENT_VALUES);
    assert.match(out, /"total":1/);
  });

  it('keeps error type and message but scrubs secrets from them, and drops bodies carried by errors', () => {
    const { log, text } = capture();
    const err = Object.assign(
      new Error(`token request to https://gw.example/auth/token?client_id=bridge&client_secret=top-secret-9 failed`),
      { body: { errors: [{ value: { firstname: 'Zawadi' } }] }, status: 400 },
    );
    log.error({ err }, 'delivery failed');
    const out = text();
    assertAbsent(out, ['top-secret-9', 'Zawadi']);
    const logged = JSON.parse(out).err;
    assert.equal(logged.type, 'Error');
    assert.equal(logged.status, 400);
    assert.match(logged.message, /^token request to https:\/\/gw\.example\/auth\/token\?/);
  });

  it('scrubs an error whose cause carries personal data', () => {
    const { log, text } = capture();
    const err = new Error('mapping failed', { cause: { resource: PATIENT, reason: 'no office' } });
    log.error({ err }, 'mapping failed');
    assertAbsent(text(), PATIENT_VALUES);
  });
});

/** What Node's `net` raises when every address of a host refused: no message, the first code, the reasons inside. */
function connectionRefused(...addresses: string[]): AggregateError {
  const inner = addresses.map((address) =>
    Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED', syscall: 'connect' }),
  );
  return Object.assign(new AggregateError(inner), { code: 'ECONNREFUSED' });
}

describe('redaction of an AggregateError', () => {
  it("keeps its inner errors' codes and messages, which hold the only reason given", () => {
    const { log, text } = capture();
    const err = new TypeError('fetch failed', { cause: connectionRefused('::1:3000', '127.0.0.1:3000') });
    log.warn({ err }, 'call failed');
    const cause = JSON.parse(text()).err.cause;
    assert.equal(cause.type, 'AggregateError');
    assert.equal(cause.message, '');
    assert.equal(cause.code, 'ECONNREFUSED');
    assert.deepEqual(cause.errors, [
      { type: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED ::1:3000' },
      { type: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:3000' },
    ]);
  });

  it('keeps a few of them, each cut short, and counts the rest', () => {
    const { log, text } = capture();
    const many = Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:443 ${'x'.repeat(1000)}`);
    log.error({ err: connectionRefused(...many) }, 'call failed');
    const logged = JSON.parse(text()).err;
    assert.equal(logged.errors.length, 3);
    assert.equal(logged.moreErrors, 7);
    for (const item of logged.errors) assert.ok(item.message.length <= 201, item.message);
  });

  it('scrubs secrets and personal data out of the inner messages', () => {
    const { log, text } = capture();
    const err = new AggregateError([
      new Error(`GET https://emr.example/fhir/Patient?family=Otieno&_count=1 with Bearer ${JWT} failed`),
      new Error('token https://gw.example/token?client_secret=inner-secret-7 refused w.otieno@example.org'),
    ]);
    log.error({ err }, 'call failed');
    assertAbsent(text(), ['Otieno', JWT.slice(0, 20), 'inner-secret-7', 'w.otieno@example.org']);
    assert.equal(JSON.parse(text()).err.errors.length, 2);
  });

  it('gives a message-less line the inner reasons instead of an empty message', () => {
    const { log, text } = capture();
    log.warn(connectionRefused('::1:3000', '127.0.0.1:3000'));
    assert.equal(JSON.parse(text()).msg, 'connect ECONNREFUSED ::1:3000; connect ECONNREFUSED 127.0.0.1:3000');
  });
});

describe('redaction of message strings', () => {
  it('scrubs secret-bearing query strings, bearer tokens, JWTs and URL credentials', () => {
    const text = scrubString(
      `POST https://gw.example/auth/token?client_id=bridge&client_secret=s3cr3t-value&grant_type=client_credentials ` +
        `Authorization: Bearer abc.def-ghi Basic dXNlcjpwYXNz token ${JWT} https://admin:hunter2@fhir.example/fhir`,
    );
    assertAbsent(text, ['s3cr3t-value', 'abc.def-ghi', 'dXNlcjpwYXNz', JWT.slice(0, 20), 'hunter2']);
    assert.match(text, /grant_type=client_credentials/);
  });

  it('scrubs personal-data search parameters from logged URLs', () => {
    const { log, text } = capture();
    log.info(
      'GET https://emr.example/fhir/Patient?family=Otieno&given=Wanjiku&birthdate=2019-02-12&identifier=urn:mrn|MRN-777123&_count=10',
    );
    log.info(
      { url: 'https://emr.example/fhir/Patient?name=Otieno&phone=0977123456&email=w.o@example.org&_sort=_lastUpdated' },
      'search',
    );
    assertAbsent(text(), ['Otieno', 'Wanjiku', '2019-02-12', 'MRN-777123', '0977123456', 'w.o@example.org']);
    assert.match(text(), /_count=10/);
    assert.match(text(), /_sort=_lastUpdated/);
  });

  it('scrubs DHIS2 tokens, lower-case bearer schemes, API keys and encoded or full-text search parameters', () => {
    const text = scrubString(
      'Headers.append: "ApiToken d2pat_S3CRETa1b2c3" bearer lowerCaseToken9 ' +
        'GET https://emr.example/fhir/Patient?name%3Acontains=Otieno&_content=Wanjiku&_count=5 ' +
        'GET https://dhis2.example/api/tracker/trackedEntities?filter=w75KJ2mc4zz:EQ:Amani&program=IpHINAT79UW ' +
        'https://maps.example/geo?key=AIzaKEY123&api_key=k2&refresh_token=r3',
    );
    assertAbsent(text, ['d2pat_S3CRET', 'lowerCaseToken9', 'Otieno', 'Wanjiku', 'Amani', 'AIzaKEY123', 'k2&', 'r3']);
    assert.match(text, /_count=5/);
    assert.match(text, /program=IpHINAT79UW/);
  });

  it('drops what other systems call names, ids, birth dates and phones, and a resource narrative', () => {
    const out = JSON.stringify(
      redactDeep({
        fullName: 'Amani Banda',
        nationalId: '123456/78/1',
        dateOfBirth: '2024-01-05',
        phoneNumber: '0977123456',
        mrn: 'MRN-9',
        street: 'Plot 12 Kabwata',
        text: { status: 'generated', div: '<div>Amani Banda</div>' },
        headers: { 'x-api-key': 'k-123', 'set-cookie': 'sid=abc' },
        status: 'kept',
      }),
    );
    assertAbsent(out, ['Amani', '123456/78/1', '2024-01-05', '0977123456', 'MRN-9', 'Kabwata', 'k-123', 'sid=abc']);
    assert.match(out, /"status":"kept"/);
  });

  it('scrubs the message pino would take from an error logged without one', () => {
    const { log, text } = capture();
    const err = new Error(`GET https://gw.example/auth/token?client_secret=s3cr3t-value failed for ${JWT}`);
    log.warn(err);
    log.error({ err });
    assertAbsent(text(), ['s3cr3t-value', JWT.slice(0, 20)]);
    const lines = text().trim().split('\n');
    assert.equal(lines.length, 2);
    for (const line of lines) assert.match(JSON.parse(line).msg, /client_secret=\[redacted\] failed/);
  });

  it('scrubs the whole userinfo of a URL: a password with an `@` in it, a token given as the user', () => {
    assert.equal(scrubString('GET https://bridge:p@ss@fhir.example/fhir'), 'GET https://[redacted]@fhir.example/fhir');
    assert.equal(scrubString('https://ghp_T0KEN123@git.example/x.git'), 'https://[redacted]@git.example/x.git');
    assert.equal(scrubString('https://a.b@site.org:pw@h/x'), 'https://[redacted]@h/x');
    // No userinfo: an `@` past the authority, or in another field of a JSON line, is no password.
    for (const text of ['https://fhir.example:8443/p@x?q=a@b', '{"url":"https://h.example","at":"x@y"}'])
      assert.equal(scrubString(text), text);
    // Any scheme, but only after one: `//` and `@` in prose are no URL.
    assert.equal(scrubString('clone ssh://git@git.example/x.git'), 'clone ssh://[redacted]@git.example/x.git');
    for (const prose of ['see docs//faq@v2', 'paths a//b@c and //x@y']) assert.equal(scrubString(prose), prose);
  });

  it('scrubs the userinfo of a protocol-relative URL with a password, and leaves `//` and `@` in prose', () => {
    assert.equal(scrubString('GET //bridge:p@ss@fhir.example/fhir'), 'GET //[redacted]@fhir.example/fhir');
    assert.equal(scrubString('{"url":"//u:s3cr3t@h:8443/x"}'), '{"url":"//[redacted]@h:8443/x"}');
    assert.equal(scrubString("base='//a.b@site.org:pw@h/x'"), "base='//[redacted]@h/x'");
    assert.equal(scrubString('fhir=//svc:tok3n@emr.local'), 'fhir=//[redacted]@emr.local');
    for (const prose of [
      'see docs//faq@v2',
      'paths a//b@c and //x@y',
      '// TODO: ask ops@clinic',
      'ratio 1//2:3@4',
      'at //x@y: done, then //host:8443/path@v2',
      'https://fhir.example:8443/p@x?q=a:b@c',
    ])
      assert.equal(scrubString(prose), prose);
  });

  it('scrubs Basic and Token credentials in any case, and leaves the words in prose', () => {
    const text = scrubString(
      'basic dXNlcjpwYXNz BASIC dXNlcjpwYXNz Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b ' +
        'TOKEN abcdefghijklmnopqrst BEARER upper-9 ApiToken d2pat_A1 APITOKEN d2pat_B2',
    );
    assertAbsent(text, ['dXNlcjpwYXNz', '9944b09199c6', 'abcdefghijklmnopqrst', 'upper-9', 'd2pat_A1', 'd2pat_B2']);
    for (const prose of ['token check failed', 'basic auth needs a username', 'the token endpoint refused'])
      assert.equal(scrubString(prose), prose);
  });

  it('scrubs a short Basic or Token credential, and leaves a count, a status, a label or a challenge after the word', () => {
    // base64 of `u:p12`, and a short token mixing letters with digits.
    assert.equal(scrubString('Authorization: Basic dTpwMTI='), 'Authorization: Basic [redacted]');
    assert.equal(scrubString('token a1b2c3d4 refused'), 'token [redacted] refused');
    for (const prose of [
      'could not obtain a token 3 times',
      'basic 401 from the gateway',
      'Token Expired',
      'auth type basic OAuth2',
      '  token URL:      http://127.0.0.1:7070/auth/token',
      'WWW-Authenticate: Basic realm="DHIS2 Farajaland", charset="UTF-8"',
    ])
      assert.equal(scrubString(prose), prose);
  });

  it('scrubs key=, sig= and signature= only as a parameter of their own, and keeps client_id', () => {
    assert.equal(
      scrubString(
        'GET https://maps.example/geo?key=K1&sort_key=name&cache_key=c2&client_id=bridge&sig=S3&signature=S4',
      ),
      'GET https://maps.example/geo?key=[redacted]&sort_key=name&cache_key=c2&client_id=bridge&sig=[redacted]&signature=[redacted]',
    );
    assert.equal(scrubString('key=K5&x=1'), 'key=[redacted]&x=1');
    const cursor = 'next page from cursor key=updatedAt:1700000000,id:42';
    assert.equal(scrubString(cursor), cursor);
  });

  it('scrubs API-key and auth-token headers, cookies, and credentials as util.inspect writes them', () => {
    const headers = scrubString('X-API-Key: xak-1\nx-auth-token: xat-2\nCookie: sid=ck-3\nAccept: */*');
    assertAbsent(headers, ['xak-1', 'xat-2', 'ck-3']);
    assert.match(headers, /Accept: \*\/\*$/);
    const inspected = scrubString(
      inspect({
        hmacSecret: 'hm-4',
        secret: 'se-5',
        token: 'tk-6',
        headers: { cookie: 'sid=ck-7', 'x-auth-token': 'xat-8', 'X-API-Key': 'xak-9' },
        status: 'kept',
      }),
    );
    assertAbsent(inspected, ['hm-4', 'se-5', 'tk-6', 'ck-7', 'xat-8', 'xak-9']);
    assert.match(inspected, /status: 'kept'/);
    assert.match(inspected, /token: '\[redacted\]'/);
    // Unquoted, `token` and `secret` are still words (above): the quotes are what say a value follows.
    assert.equal(scrubString('token: expired'), 'token: expired');
  });

  it('scrubs every pair of a Cookie request header, not the first alone', () => {
    const header = scrubString('Cookie: theme=dark; sid=ck-11; csrf=ck-12\nAccept: */*');
    assertAbsent(header, ['dark', 'ck-11', 'ck-12']);
    assert.match(header, /^Cookie: \[redacted\]\nAccept: \*\/\*$/);
    // A Set-Cookie's attributes after its one pair say nothing secret, and stay.
    assert.match(
      scrubString('Set-Cookie: sid=ck-13; Path=/; HttpOnly'),
      /^Set-Cookie: \[redacted\]; Path=\/; HttpOnly$/,
    );
  });

  it('scrubs a credential URL-encoded inside another URL up to its encoded `&`, and pwd=', () => {
    const inner = 'https://gw.example/auth/token?client_id=bridge&client_secret=p@ss-10&grant_type=client_credentials';
    const maps = 'https://maps.example/geo?key=K12&sort_key=name';
    const text = scrubString(
      `login https://idp.example/login?next=${encodeURIComponent(inner)}&lang=en then ${encodeURIComponent(maps)}`,
    );
    assertAbsent(text, ['ss-10', 'K12']);
    assert.match(text, /client_id%3Dbridge%26client_secret%3D\[redacted\]%26grant_type%3Dclient_credentials&lang=en /);
    assert.match(text, /%3Fkey%3D\[redacted\]%26sort_key%3Dname$/);
    assert.equal(scrubString('pwd=pw-11&user=bob'), 'pwd=[redacted]&user=bob');
  });

  it("leaves a configuration error's key path and problem readable", () => {
    for (const [path, problem] of [
      ['sources[0].auth.password', 'must be string'],
      ['opencrvs.clientSecret', 'is required'],
    ] as const) {
      const message = new ConfigError(path, problem, '/etc/bridge/config.yaml').message;
      assert.equal(scrubString(message), message);
    }
  });

  it('scrubs credential values under quoted JSON keys and in `key: value` text', () => {
    const json = scrubString(
      '{"access_token":"at-1.x","token_type":"Bearer","expires_in":600,"refresh_token":"rt-2","id_token":"it-3"} ' +
        '{"client_secret": "cs-4\\"still-cs", "password" : "pw-5", "clientSecret":"cs-6", "token":"tk-7"}',
    );
    assertAbsent(json, ['at-1', 'rt-2', 'it-3', 'cs-4', 'still-cs', 'pw-5', 'cs-6', 'tk-7']);
    assert.match(json, /"access_token":"\[redacted\]","token_type":"Bearer","expires_in":600/);
    assert.match(json, /"client_secret": "\[redacted\]", "password" : "\[redacted\]"/);
    const inspected = scrubString("{ password: 'pw-8', apiKey: 'ak-9', name: 'kept' } password: hunter2, user: bob");
    assertAbsent(inspected, ['pw-8', 'ak-9', 'hunter2']);
    assert.match(inspected, /name: 'kept' \} password: \[redacted\], user: bob$/);
    // `token` and `secret` unquoted are words: only a quoted key says a credential follows.
    for (const prose of ['token: expired', 'secret: rotated at 10:02']) assert.equal(scrubString(prose), prose);
  });

  it('scrubs credentials after any separator: a fragment, `;`, `&amp;`, or the start of a form body', () => {
    const text = scrubString(
      'https://app.example/cb#access_token=fr-1&state=s1 https://x.example/?a=1;client_secret=sc-2 ' +
        '<a href="https://x.example/?a=1&amp;client_secret=sc-3&amp;b=2">; client_secret=sc-4&grant_type=client_credentials ' +
        'https://emr.example/fhir/Patient?_count=1&amp;family=Otieno;given=Wanjiku',
    );
    assertAbsent(text, ['fr-1', 'sc-2', 'sc-3', 'sc-4', 'Otieno', 'Wanjiku']);
    assert.match(text, /&state=s1 /);
    assert.match(text, /&amp;b=2/);
    assert.match(text, /&grant_type=client_credentials/);
    assert.equal(scrubString('client_secret=sc-5&grant_type=x'), 'client_secret=[redacted]&grant_type=x');
  });

  it('scrubs email addresses from free text', () => {
    assert.equal(scrubString('notify w.otieno@example.org failed'), 'notify [redacted] failed');
  });

  it('scrubs an address or a JWT glued to other text, and each of several in a row', () => {
    assert.equal(
      scrubString('to a@b.com.x@y.org,c.d-e@f.example.org!a@b.c@d'),
      'to [redacted][redacted],[redacted]!a@b.c@d',
    );
    assert.equal(scrubString(`?t%3D${JWT}&x eyJeyJ${JWT}.x`), '?t%3D[redacted]&x [redacted].x');
    assert.equal(
      scrubString(`eyJabcde.fghij eyJabcdef.ghijk.l ${JWT.replace('.', '!')}`),
      `eyJabcde.fghij [redacted] ${JWT.replace('.', '!')}`,
    );
  });

  it('scrubs interpolated message arguments too', () => {
    const { log, text } = capture();
    log.info('token %s for %s', JWT, 'https://gw.example/auth/token?client_secret=xyz-secret');
    assertAbsent(text(), [JWT.slice(0, 20), 'xyz-secret']);
  });
  it('drops what lies deeper than it walks, under keys that look harmless', () => {
    const { log, text } = capture();
    let nested: Record<string, unknown> = { item: PATIENT };
    for (let i = 0; i < 12; i++) nested = { level: nested };
    log.info({ context: nested }, 'deep');
    assertAbsent(text(), PATIENT_VALUES);
    assert.match(text(), /depth limit/);
  });

  it('redacts the bindings of a child logger as it does a logged object', () => {
    const { log, text } = capture();
    log.child({ patient: PATIENT, row: { 'child.name': 'Wanjiku Otieno' } }).info('with bindings');
    log.child({ component: 'worker' }).child({ subject: PATIENT }).info('grandchild');
    assertAbsent(text(), PATIENT_VALUES);
    assert.match(text(), /"component":"worker"/, 'harmless bindings are kept');
  });

  it('drops an age given as a declaration field (mother.age, deceased.age)', () => {
    const { log, text } = capture();
    log.info({ declaration2: { 'mother.age': 'AGE-31-YEARS', 'deceased.age': 'AGE-87-YEARS' } }, 'ages');
    assertAbsent(text(), ['AGE-31-YEARS', 'AGE-87-YEARS']);
  });
});

describe('the secret scrubber (OpenCRVS client, sources)', () => {
  it('searches only the start of a very long text, and leaves no start of a secret at the cut', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('Straddling-Secret-Value-42');
    const secret = 'Straddling-Secret-Value-42';
    // The secret at the start, and again across where the search stops (2,000 + 65,536 characters in).
    const head = `first ${secret} `;
    const filler = 'x'.repeat(67_536 - head.length - 10);
    const long = `${head}${filler}${secret}${'y'.repeat(200_000)}`;
    const out = scrubber.text(long);
    assert.ok(out.startsWith('first [redacted] '), out.slice(0, 40));
    assert.ok(out.endsWith('… [cut: too long to check]'));
    assert.ok(out.length < 67_600, `kept ${out.length} characters`);
    for (let n = 4; n <= secret.length; n++)
      assert.ok(!out.includes(secret.slice(0, n)), `a start of the secret survived: ${secret.slice(0, n)}`);
  });

  it('keeps the secrets for good and only the last few renewed tokens, each still hidden while kept', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('client-secret-value');
    // Opaque tokens (not JWT-shaped, so only the remembered value hides them).
    for (let i = 0; i < 20_000; i++) scrubber.add(`opaque-token-${i}`, { renewed: true });
    assert.equal(scrubber.size, 9, 'the client secret and the last 8 tokens');
    assert.equal(
      scrubber.text('secret=client-secret-value token=opaque-token-19999'),
      'secret=[redacted] token=[redacted]',
    );
    assert.equal(scrubber.text('opaque-token-19992'), '[redacted]');
    scrubber.add('opaque-token-19999', { renewed: true }); // the same token again: no second entry
    assert.equal(scrubber.size, 9);
  });

  it('keeps rotated secrets apart from the tokens: no number of renewals pushes one out, only later rotations', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('configured-secret');
    scrubber.add('rotated-secret-1', { rotated: true });
    scrubber.add('rotated-secret-2', { rotated: true });
    for (let i = 0; i < 1000; i++) scrubber.add(`opaque-token-${i}`, { renewed: true });
    assert.equal(
      scrubber.text('configured-secret rotated-secret-1 rotated-secret-2 opaque-token-999'),
      '[redacted] [redacted] [redacted] [redacted]',
    );
    // Sent again with every token request: still one entry, and the latest.
    scrubber.add('rotated-secret-1', { rotated: true });
    assert.equal(scrubber.size, 1 + 2 + 8);
    // Bounded too (a Vault agent may rotate hourly): the oldest rotation goes, the configured one stays.
    for (let i = 3; i <= 40; i++) scrubber.add(`rotated-secret-${i}`, { rotated: true });
    assert.equal(scrubber.size, 1 + 32 + 8);
    assert.equal(scrubber.text('rotated-secret-2'), 'rotated-secret-2');
    assert.equal(scrubber.text('configured-secret rotated-secret-40'), '[redacted] [redacted]');
  });

  it('hides a value whole when another remembered value is a part of it', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('shared-prefix');
    scrubber.add('shared-prefix-and-private-rest', { renewed: true });
    assert.equal(scrubber.text('got shared-prefix-and-private-rest'), 'got [redacted]');
  });

  it('hides a token obtained after it scrubbed a text (what it remembers is not fixed at the first use)', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('client-secret-value');
    assert.equal(scrubber.text('opaque-token-1'), 'opaque-token-1');
    scrubber.add('opaque-token-1', { renewed: true });
    assert.equal(scrubber.text('opaque-token-1'), '[redacted]');
  });

  it('hides a value as a URL, a form body and a JSON body write it', () => {
    const scrubber = new SecretScrubber();
    const secret = 'p@ss w/rd+"quoted"';
    scrubber.add(secret);
    const echoed = [
      `form: grant_type=client_credentials&client_secret=${new URLSearchParams({ s: secret }).toString().slice(2)}`,
      `url: /token/${encodeURIComponent(secret)}`,
      `json: ${JSON.stringify({ received: secret })}`,
      `raw: ${secret}`,
    ].join('\n');
    const out = scrubber.text(echoed);
    for (const part of ['w/rd', 'w%2Frd', 'quoted']) assert.ok(!out.includes(part), out);
    assert.equal(out.split('[redacted]').length - 1, 4, out);
  });

  it('copies an error chain with every text scrubbed, keeping what says what happened and no bodies', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('bare-secret-value');
    const inner = Object.assign(new Error('connect ECONNREFUSED ::1:443 bare-secret-value'), { code: 'ECONNREFUSED' });
    const original = new TypeError('fetch failed for bare-secret-value', {
      cause: Object.assign(new AggregateError([inner]), { code: 'ECONNREFUSED', body: 'bare-secret-value' }),
    });
    const copy = scrubbedError(original, scrubber);
    assert.ok(copy instanceof Error);
    assert.equal(copy.name, 'TypeError');
    assert.equal(copy.message, 'fetch failed for [redacted]');
    assert.ok(copy.stack?.startsWith('TypeError: fetch failed for [redacted]\n'), copy.stack);
    const cause = copy.cause as Error & { code?: string; body?: unknown; errors?: unknown[] };
    assert.deepEqual([cause.name, cause.code, cause.body], ['AggregateError', 'ECONNREFUSED', undefined]);
    assert.deepEqual(
      cause.errors?.map((e) => [(e as Error).message, (e as { code?: string }).code]),
      [['connect ECONNREFUSED ::1:443 [redacted]', 'ECONNREFUSED']],
    );
    const { log, text } = capture();
    log.warn({ err: copy }, 'failed');
    assert.ok(!text().includes('bare-secret-value'), text());
  });
});

describe('scrubbing time on adversarial text', () => {
  // An answer's body is scrubbed on the event loop: a pattern that reads a long run again from each of its
  // characters held /healthz for 7–8 s per retry with a 64 kB 503 body of 'a'. Run in a child process that
  // is killed past its time, so that a regression fails this test instead of hanging it. The kill is the only
  // bound: linear scrubbing of these 20 MB takes about a second (the figures are in `npm run bench:scrub`), a
  // quadratic pattern needs minutes for 1 MB, so a loaded CI machine cannot make it fail; a tighter bound
  // would be a timed assertion, which measures the machine.
  it('scrubs 1 MB built against each pattern in linear time', () => {
    const script = `
      import { scrubString } from ${JSON.stringify(childModule('observability/redact.ts'))};
      import { SecretScrubber } from ${JSON.stringify(childModule('observability/secret-scrubber.ts'))};
      const MB = 1 << 20;
      const fill = (unit) => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
      const inputs = [fill('a'), fill('eyJ'), 'eyJ'.repeat(MB / 6) + '.' + fill('a').slice(MB / 2),
        'a@' + fill('b.'), fill('a').slice(MB / 2) + '@' + fill('b').slice(MB / 2), fill('a@'), fill('a.'),
        fill('?token'), fill('?a.'), '//' + fill('a:'), 'Bearer ' + fill(' '), '//' + fill('a@'), fill('//a'),
        'Token ' + fill('a'), fill('token '), '"password":"' + fill('a'), fill('"token":"'), 'password:' + fill(' '),
        fill('password= '), fill('#token='), fill('a+'), fill('a://'), 'a://' + fill('b:'), 'Basic ' + fill('aB'),
        fill('token a1 '), fill('?key='), fill('_key='), 'client_secret%3D' + fill('%'), fill('%26key%3D'),
        fill("token: '"), 'token' + fill(' '), fill('x-api-key: '), ' //' + fill('a:'), fill(' //a:'),
        ' //' + fill('a'), ' //' + fill('@'), fill(' //a@'), fill('=//'), ' //a:' + fill('@a')];
      const started = performance.now();
      for (const text of inputs) scrubString(text);
      new SecretScrubber().value({ message: 'a'.repeat(65_000), error: 'b'.repeat(65_000) });
      console.log(performance.now() - started);
    `;
    const run = spawnSync(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.signal, null, 'killed at 60 s: some pattern is super-linear');
    assert.equal(run.status, 0, run.stderr);
    assert.ok(Number.isFinite(Number(run.stdout.trim())), `the scrubbing script printed ${run.stdout}`);
  });
});
