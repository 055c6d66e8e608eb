import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { createAjv } from '../../src/config/ajv.js';
import { loadConfig } from '../../src/config/index.js';
import { describeAjvError, readProfileJson } from '../../src/config/schema.js';
import { loadMappings, mappingOptionsFromConfig } from '../../src/mapping/index.js';
import { bundleForNobody } from '../support/bundle-for-nobody.js';
import { configErrorOf, MINIMAL_CONFIG } from './config-helpers.js';

/** loadConfig(file) in a child process: as nobody (uid 65534) when the tests run as root, who reads any file. */
async function loadConfigAs(asRoot: boolean, file: string): Promise<SpawnSyncReturns<string>> {
  const bundle = await bundleForNobody('src/config/index.ts');
  const load = `import(${JSON.stringify(bundle.url)}).then((m) => { try { m.loadConfig({ file: ${JSON.stringify(file)} }); } catch (e) { console.log(e.message); } })`;
  try {
    return spawnSync(process.execPath, ['-e', load], {
      cwd: bundle.dir,
      encoding: 'utf8',
      timeout: 30_000,
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
  } finally {
    bundle.remove();
  }
}

describe('configuration', () => {
  it("takes a site's own mapping file by a path relative to the config file, and names a missing one", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-site-mapping-'));
    mkdirSync(join(dir, 'mappings'));
    const shipped = readFileSync(new URL('../../mappings/birth.fhir.yaml', import.meta.url), 'utf8');
    writeFileSync(join(dir, 'mappings', 'birth.yaml'), shipped.replace(/^id: birth\.fhir$/m, 'id: birth.site'));
    const file = join(dir, 'bridge.yaml');
    const sources = (entry: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.local/fhir\n    mappings: [${entry}, death.fhir]\n`;
    writeFileSync(file, sources('./mappings/birth.yaml'));
    const config = loadConfig({ file });
    assert.deepEqual(config.sources[0]?.mappings, [join(dir, 'mappings', 'birth.yaml'), 'death.fhir']);
    const ids = loadMappings(mappingOptionsFromConfig(config)).mappings.map((m) => m.id);
    assert.deepEqual(ids.sort(), ['birth.site', 'death.fhir']);

    writeFileSync(file, sources('./mappings/brith.yaml'));
    const missing = configErrorOf(() => loadConfig({ file }));
    assert.equal(missing.path, 'sources[0].mappings[0]');
    assert.match(missing.message, /no mapping file at .*mappings\/brith\.yaml/);

    // The copy named by its id, as `id:` might suggest: refused, pointing to the path that names it.
    writeFileSync(file, sources('birth.site'));
    const byId = configErrorOf(() => loadConfig({ file }));
    assert.equal(byId.path, 'sources[0].mappings[0]');
    assert.match(byId.problem, /^no mapping named "birth\.site" \(there are: .*birth\.fhir.*\); /);
    assert.match(byId.problem, /\.\/mappings\/birth\.yaml has that id: name it by its path, \.\/mappings\/birth\.yaml/);
    writeFileSync(file, sources('birth.nowhere'));
    assert.match(
      configErrorOf(() => loadConfig({ file })).problem,
      /a mapping of your own is named by its path, not its id: e\.g\. \.\/mappings\/birth\.yaml$/,
    );
  });

  it('derives the token and events URLs from the domain and applies defaults', () => {
    const config = loadConfig({ text: MINIMAL_CONFIG });
    assert.equal(config.opencrvs.tokenUrl, 'https://gateway.farajaland.example.org/auth/token');
    assert.equal(config.opencrvs.eventsUrl, 'https://register.farajaland.example.org/api/events');
    assert.equal(config.opencrvs.version, '2.0');
    assert.equal(config.delivery.concurrency, 4);
    assert.equal(config.http.port, 8080);
  });

  it('takes numbers and booleans from environment references (text) and says to quote a version', () => {
    const config = loadConfig({
      text: `${MINIMAL_CONFIG}http: { port: "\${BRIDGE_PORT}" }\nsources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.local/fhir\n    poll:\n      enabled: \${POLLING}\n      pageSize: \${PAGE}\n`,
      env: { BRIDGE_PORT: '9000', POLLING: 'false', PAGE: '250' },
    });
    assert.equal(config.http.port, 9000);
    assert.equal(config.sources[0]?.poll.enabled, false);
    assert.equal(config.sources[0]?.poll.pageSize, 250);
    // Only a whole reference is read as a number: YAML's own numbers are not made text (a secret 0x1F
    // would become "31", an office code 00123 "123").
    const hex = configErrorOf(() =>
      loadConfig({ text: MINIMAL_CONFIG.replace('clientSecret: s3cret', 'clientSecret: 0x1F') }),
    );
    assert.equal(hex.path, 'opencrvs.clientSecret');
    assert.match(hex.problem, /must be string/);
    const notANumber = configErrorOf(() =>
      loadConfig({ text: `${MINIMAL_CONFIG}http: { port: "\${BRIDGE_PORT}" }\n`, env: { BRIDGE_PORT: 'eighty' } }),
    );
    assert.equal(notANumber.path, 'http.port');
    const version = configErrorOf(() =>
      loadConfig({ text: MINIMAL_CONFIG.replace('opencrvs:\n', 'opencrvs:\n  version: 2.0\n') }),
    );
    assert.equal(version.path, 'opencrvs.version');
    assert.match(version.problem, /must be one of "2\.0", "1\.9" \(in quotes: YAML reads 2\.0 unquoted as a number\)/);
  });

  it('refuses a key with no value by name, instead of reading it as false or 0', () => {
    const blank = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.local/fhir\n    poll:\n      enabled:\n`,
      }),
    );
    assert.equal(blank.path, 'sources[0].poll.enabled');
    assert.match(blank.problem, /has no value: give one, or leave the key out for its default/);
    const overlap = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}delivery:\n  recheckAfterSeconds:\n` }));
    assert.equal(overlap.path, 'delivery.recheckAfterSeconds');
  });

  it('refuses a domain every URL of which is also given (it would be silently unused)', () => {
    const both = configErrorOf(() =>
      loadConfig({
        text: 'opencrvs: { domain: x.org, tokenUrl: "http://127.0.0.1:7070/auth/token", eventsUrl: "http://127.0.0.1:7070/events", clientId: a, clientSecret: b }',
      }),
    );
    assert.equal(both.path, 'opencrvs.domain');
    assert.match(both.problem, /is not used: opencrvs\.tokenUrl and opencrvs\.eventsUrl are given too/);
    const withToken = configErrorOf(() =>
      loadConfig({ text: 'opencrvs: { domain: x.org, eventsUrl: "http://127.0.0.1:7070/events", accessToken: t }' }),
    );
    assert.equal(withToken.path, 'opencrvs.domain');
    // One URL given: the domain supplies the other, as documented.
    const one = loadConfig({
      text: 'opencrvs: { domain: x.org, tokenUrl: "https://auth.x.org/token", clientId: a, clientSecret: b }',
    });
    assert.equal(one.opencrvs.tokenUrl, 'https://auth.x.org/token');
    assert.equal(one.opencrvs.eventsUrl, 'https://register.x.org/api/events');
  });

  // OpenCRVS 1.9 reads locations from the gateway: an operator told so adds the domain beside the URLs, and
  // must learn that the events URL already names the gateway, not only that the domain is unused.
  it('says, for OpenCRVS 1.9, that the gateway is found from opencrvs.eventsUrl when refusing the domain', () => {
    const urls = 'tokenUrl: "http://127.0.0.1:17470/token", eventsUrl: "http://127.0.0.1:17470/api/events"';
    for (const given of [
      `${urls}, clientId: a, clientSecret: b`,
      'eventsUrl: "https://register.x.org/api/events", accessToken: t',
    ]) {
      const err = configErrorOf(() => loadConfig({ text: `opencrvs: { version: "1.9", domain: x.org, ${given} }` }));
      assert.equal(err.path, 'opencrvs.domain');
      assert.match(
        err.problem,
        /is not used: .* given too \(OpenCRVS 1\.9 finds the gateway for its location API from opencrvs\.eventsUrl: https:\/\/register\.<domain>\/api\/events or https:\/\/gateway\.<domain>\/events\); give the domain alone, or the URLs without it$/,
      );
    }
    // Without the domain, the same URLs load as written.
    const config = loadConfig({ text: `opencrvs: { version: "1.9", ${urls}, clientId: a, clientSecret: b }` });
    assert.equal(config.opencrvs.eventsUrl, 'http://127.0.0.1:17470/api/events');
    assert.equal(config.opencrvs.domain, undefined);
  });

  it('says what opencrvs.domain takes when it is written as a URL or an address, under its own key', () => {
    const domain = (value: string) => `opencrvs:\n  domain: ${value}\n  clientId: a\n  clientSecret: b\n`;
    for (const value of ['https://farajaland.opencrvs.dev', 'farajaland.opencrvs.dev/', '127.0.0.1:7070', '10.0.0.5']) {
      const err = configErrorOf(() => loadConfig({ text: domain(value) }));
      assert.equal(err.path, 'opencrvs.domain', value);
      assert.match(err.problem, /^must be a host name without scheme or path, e\.g\. farajaland\.opencrvs\.dev/, value);
    }
    const address = configErrorOf(() => loadConfig({ text: domain('127.0.0.1:7070') }));
    assert.match(address.problem, /give opencrvs\.tokenUrl and opencrvs\.eventsUrl instead/);
    assert.equal(
      loadConfig({ text: domain('farajaland.opencrvs.dev:8443') }).opencrvs.eventsUrl,
      'https://register.farajaland.opencrvs.dev:8443/api/events',
    );
  });

  it('names the environment variable a refused value came from', () => {
    const source = `${MINIMAL_CONFIG}sources:\n  - { id: emr, kind: fhir, baseUrl: "\${EMR_URL}" }\n`;
    const withUser = configErrorOf(() => loadConfig({ text: source, env: { EMR_URL: 'http://u:p@emr.local/fhir' } }));
    assert.equal(withUser.path, 'sources[0].baseUrl');
    assert.match(withUser.problem, /must not carry credentials.*\(it comes from the environment variable EMR_URL\)$/);
    assert.doesNotMatch(withUser.message, /u:p@/);
    const port = configErrorOf(() =>
      loadConfig({ text: `${MINIMAL_CONFIG}http: { port: "\${PORT}\${SUFFIX}" }\n`, env: { PORT: '80', SUFFIX: 'x' } }),
    );
    assert.match(port.problem, /\(it is made from the environment variables PORT, SUFFIX\)$/);
    // Written in the file: nothing to name.
    const inline = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}http: { port: eighty }\n` }));
    assert.doesNotMatch(inline.problem, /environment/);
  });

  it('names the path of an unknown key', () => {
    const err = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}  clientSecrett: x\n` }));
    assert.equal(err.path, 'opencrvs.clientSecrett');
    assert.match(err.message, /unknown key/);
  });

  it('suggests the key a typo meant, at any depth, and only a near one', () => {
    const typo = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}delivery:\n  settleSecond: 5\n` }));
    assert.equal(typo.path, 'delivery.settleSecond');
    assert.equal(typo.problem, 'unknown key (did you mean settleSeconds?)');
    const casing = configErrorOf(() => loadConfig({ text: MINIMAL_CONFIG.replace('clientId:', 'clientID:') }));
    assert.match(casing.problem, /^unknown key \(did you mean clientId\?\)/);
    const inSource = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    poll: { schedul: '*/5 * * * *' }\n`,
      }),
    );
    assert.equal(inSource.problem, 'unknown key (did you mean schedule?)');
    const far = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}  banana: 1\n` }));
    assert.match(far.problem, /^unknown key($| \(also)/);
  });

  it('says to quote a number or true/false given where text is wanted (password: 123456), never repeating it', () => {
    const auth = (password: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    auth: { type: basic, username: admin, password: ${password} }\n`;
    const number = configErrorOf(() => loadConfig({ text: auth('123456') }));
    assert.equal(number.path, 'sources[0].auth.password');
    assert.equal(number.problem, 'must be string (put it in quotes: YAML reads it unquoted as a number)');
    assert.doesNotMatch(number.message, /123456/);
    const flag = configErrorOf(() => loadConfig({ text: auth('true') }));
    assert.equal(flag.problem, 'must be string (put it in quotes: YAML reads it unquoted as true or false)');
    assert.doesNotThrow(() => loadConfig({ text: auth("'123456'") }));
    // A list is no quoting mistake: no hint.
    const list = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}store: { path: [a] }\n` }));
    assert.equal(list.problem, 'must be string');
  });

  it('suggests the key a shortened one begins (auth user → username)', () => {
    const err = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    auth: { type: basic, user: admin, password: 's3cret' }\n`,
      }),
    );
    assert.equal(err.path, 'sources[0].auth.user');
    assert.match(err.problem, /^unknown key \(did you mean username\?\)/);
  });

  it('says a URL written without its scheme (127.0.0.1:8090/fhir) must start with http:// or https://', () => {
    const err = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: 127.0.0.1:8090/fhir\n`,
      }),
    );
    assert.equal(err.path, 'sources[0].baseUrl');
    assert.match(err.problem, /^must start with http:\/\/ or https:\/\//);
  });

  it('refuses a DHIS2 baseUrl with a versioned API path (…/api/41), which the client would call as …/api/41/api/…', () => {
    const dhis2 = (baseUrl: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: hmis\n    kind: dhis2\n    baseUrl: ${baseUrl}\n    dhis2: { program: IpHINAT79UW }\n`;
    for (const baseUrl of ['https://dhis2.example.org/api/41', 'https://dhis2.example.org/dhis/api/40/']) {
      const err = configErrorOf(() => loadConfig({ text: dhis2(baseUrl) }));
      assert.equal(err.path, 'sources[0].baseUrl');
      assert.match(
        err.problem,
        /^ends in a versioned API path \(\/api\/4\d\): give the DHIS2 server's root, with or without \/api/,
      );
    }
    for (const baseUrl of [
      'https://dhis2.example.org',
      'https://dhis2.example.org/api',
      'https://dhis2.example.org/dhis/api/',
    ]) {
      assert.equal(loadConfig({ text: dhis2(baseUrl) }).sources[0]?.baseUrl, baseUrl);
    }
  });

  it("reads a pattern's sentence off the failing schema node, also inside a definition with a $ref of its own", () => {
    // ajv inlines no definition holding a `$ref`: its errors' schemaPath then starts again from that
    // definition (`#/pattern`), which names no node of the root schema.
    const schema = structuredClone(readProfileJson('config.schema.json')) as {
      definitions: Record<string, Record<string, unknown>>;
    };
    schema.definitions.text = { type: 'string', minLength: 1 };
    for (const name of ['url', 'dhis2Uid']) {
      const { type: _type, ...rest } = schema.definitions[name] ?? {};
      schema.definitions[name] = { $ref: '#/definitions/text', ...rest };
    }
    const validate = createAjv({ verbose: true }).compile(schema);
    const data = parse(
      `${MINIMAL_CONFIG}sources:\n  - id: hmis\n    kind: dhis2\n    baseUrl: 127.0.0.1:8091\n    dhis2: { program: Child-Prog }\n`,
    );
    assert.equal(validate(data), false);
    const said = (validate.errors ?? [])
      .filter((e) => e.keyword === 'pattern')
      .map((e) => describeAjvError(e, data))
      .map((d) => `${d.path}: ${d.problem}`);
    assert.deepEqual(said, [
      'sources[0].baseUrl: must start with http:// or https:// (e.g. https://emr.example.org/fhir)',
      'sources[0].dhis2.program: "Child-Prog" is not a DHIS2 uid (11 characters, a letter then letters or digits)',
    ]);
  });

  it('suggests the key a typo meant in an object nested inside a definition with a $ref of its own', () => {
    // sources[].auth (sourceAuth) holds $refs, so ajv does not inline it: the schemaPath of an error in an
    // object under it (`#/properties/retry/additionalProperties`) starts again from the definition.
    const schema = structuredClone(readProfileJson('config.schema.json')) as {
      definitions: { sourceAuth: { properties: Record<string, unknown> } };
    };
    schema.definitions.sourceAuth.properties.retry = {
      type: 'object',
      additionalProperties: false,
      properties: { maxAttempts: { type: 'integer' } },
    };
    const validate = createAjv({ verbose: true }).compile(schema);
    const data = parse(
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    auth: { type: bearer, token: t, retry: { maxAttempt: 3 } }\n`,
    );
    assert.equal(validate(data), false);
    const said = (validate.errors ?? []).map((e) => describeAjvError(e, data)).map((d) => `${d.path}: ${d.problem}`);
    assert.deepEqual(said, ['sources[0].auth.retry.maxAttempt: unknown key (did you mean maxAttempts?)']);
  });

  it("suggests ./name for a mapping file beside the configuration named bare (a bare name is a shipped mapping's)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-bare-mapping-'));
    const shipped = readFileSync(new URL('../../mappings/birth.fhir.yaml', import.meta.url), 'utf8');
    writeFileSync(join(dir, 'birth-site.yaml'), shipped.replace(/^id: birth\.fhir$/m, 'id: birth.site'));
    const file = join(dir, 'bridge.yaml');
    const withMapping = (entry: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.local/fhir\n    mappings: [${entry}]\n`;
    writeFileSync(file, withMapping('birth-site.yaml'));
    const bare = configErrorOf(() => loadConfig({ file }));
    assert.equal(bare.path, 'sources[0].mappings[0]');
    assert.match(bare.problem, /give its path: \.\/birth-site\.yaml$/);
    writeFileSync(file, withMapping('./birth-site.yaml'));
    assert.deepEqual(loadConfig({ file }).sources[0]?.mappings, [join(dir, 'birth-site.yaml')]);
    // No such file beside it: the list of shipped mappings, as before.
    writeFileSync(file, withMapping('brith-site.yaml'));
    assert.match(configErrorOf(() => loadConfig({ file })).problem, /\(there are: .*birth\.fhir/);
  });

  it('says a configuration path that is a folder is what Docker mounts for a host file that is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-config-folder-'));
    const folder = join(dir, 'bridge.yaml');
    mkdirSync(folder);
    const err = configErrorOf(() => loadConfig({ file: folder }));
    assert.match(err.problem, /^cannot read the file \(EISDIR\): it is a folder, not a file\./);
    assert.match(err.problem, /Docker .* host file given to -v .* does not exist/);
  });

  it('names only the file for a problem with the file as a whole, and the key path for a key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-config-missing-'));
    const file = join(dir, 'nonexist.yaml');
    assert.equal(configErrorOf(() => loadConfig({ file })).message, `${file}: cannot read the file (ENOENT)`);
    assert.equal(
      configErrorOf(() => loadConfig({})).message,
      'no configuration file given (--config or BRIDGE_CONFIG)',
    );
    writeFileSync(file, MINIMAL_CONFIG.replace(/\n$/, '\nstore: { path: [a] }\n'));
    assert.equal(configErrorOf(() => loadConfig({ file })).message, `${file}: store.path: must be string`);
  });

  it('puts a misspelt key before the required key it hides, and lists the other problems', () => {
    const err = configErrorOf(() => loadConfig({ text: 'opencrv:\n  domain: x.org\nstore: { path: [a] }\n' }));
    assert.equal(err.path, 'opencrv');
    assert.match(
      err.message,
      /opencrv: unknown key \(did you mean opencrvs\?\) \(also .*opencrvs: is required.*store\.path: must be string/,
    );
  });

  it('refuses a DHIS2 uid typed wrong at start-up, naming the key and the value', () => {
    const dhis2 = (settings: string, writeBack = '{ dataElement: uf3svrmp8Oj, programStage: A03MvHHogjR }') =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.local/fhir\n` +
      `  - id: hmis\n    kind: dhis2\n    baseUrl: http://dhis2.local\n    dhis2: ${settings}\n    writeBack: ${writeBack}\n`;
    const loaded = loadConfig({ text: dhis2('{ program: IpHINAT79UW, orgUnits: [ImspTQPwCqd, O6uvpzGd5pu] }') });
    assert.equal(loaded.sources[1]?.dhis2?.program, 'IpHINAT79UW');
    const uid = '(11 characters, a letter then letters or digits)';

    const program = configErrorOf(() => loadConfig({ text: dhis2('{ program: IpHINAT79U }') }));
    assert.equal(program.path, 'sources[1].dhis2.program');
    assert.ok(
      program.message.includes(`sources[1].dhis2.program: "IpHINAT79U" is not a DHIS2 uid ${uid}`),
      program.message,
    );
    const orgUnit = configErrorOf(() => loadConfig({ text: dhis2("{ orgUnits: [ImspTQPwCqd, '1mspTQPwCqd'] }") }));
    assert.equal(orgUnit.path, 'sources[1].dhis2.orgUnits[1]');
    assert.ok(orgUnit.message.includes(`"1mspTQPwCqd" is not a DHIS2 uid ${uid}`), orgUnit.message);
    const stage = configErrorOf(() =>
      loadConfig({ text: dhis2('{}', "{ dataElement: uf3svrmp8Oj, programStage: 'A03MvHHogjR ' }") }),
    );
    assert.equal(stage.path, 'sources[1].writeBack.programStage');
    assert.ok(stage.message.includes(`"A03MvHHogjR " is not a DHIS2 uid ${uid}`), stage.message);
    const pasted = configErrorOf(() => loadConfig({ text: dhis2('{}', `{ attribute: '${'x'.repeat(500)}' }`) }));
    assert.equal(pasted.path, 'sources[1].writeBack.attribute');
    assert.ok(pasted.message.includes(`"${'x'.repeat(40)}…" is not a DHIS2 uid`), 'a long value is cut short');
  });

  it('refuses a poll schedule node-cron cannot run, and credentials inside a URL', () => {
    const source = (extra: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.local/fhir\n${extra}`;
    const schedule = configErrorOf(() => loadConfig({ text: source("    poll: { schedule: 'every 5 minutes' }\n") }));
    assert.equal(schedule.path, 'sources[0].poll.schedule');
    assert.match(schedule.message, /not a cron expression/);
    assert.equal(loadConfig({ text: source("    poll: { schedule: '*/10 * * * * *' }\n") }).sources[0]?.id, 'emr');
    assert.equal(
      loadConfig({ text: source("    poll: { enabled: false, schedule: 'never' }\n") }).sources[0]?.poll.enabled,
      false,
      'an unused schedule is not checked',
    );
    const mapping = configErrorOf(() => loadConfig({ text: source('    mappings: [birth.fhir, birth.fhr]\n') }));
    assert.equal(mapping.path, 'sources[0].mappings[1]');
    assert.match(mapping.message, /no mapping named "birth\.fhr" \(there are: .*birth\.fhir/);
    const dhis2 = (fields: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: hmis\n    kind: dhis2\n    baseUrl: http://dhis2.local\n    dhis2: { fields: '${fields}' }\n`;
    const noWatermark = configErrorOf(() =>
      loadConfig({ text: dhis2('trackedEntity,attributes,enrollments[updatedAt,events]') }),
    );
    assert.equal(noWatermark.path, 'sources[0].dhis2.fields');
    assert.match(noWatermark.message, /must include updatedAt/);
    assert.equal(
      loadConfig({ text: dhis2('trackedEntity,updatedAt,attributes,enrollments[*,events[*]],relationships') })
        .sources[0]?.dhis2?.fields,
      'trackedEntity,updatedAt,attributes,enrollments[*,events[*]],relationships',
    );
    // With a type, the poller tells each record's type itself: the list must say it.
    const typed = (fields: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: hmis\n    kind: dhis2\n    baseUrl: http://dhis2.local\n    dhis2: { trackedEntityType: nEenWmSyUEp, fields: '${fields}' }\n`;
    const noType = configErrorOf(() => loadConfig({ text: typed('trackedEntity,updatedAt,attributes,enrollments') }));
    assert.equal(noType.path, 'sources[0].dhis2.fields');
    assert.match(
      noType.message,
      /must include trackedEntityType \(or be \*\), as sources\[0\]\.dhis2\.trackedEntityType is set/,
    );
    assert.equal(
      loadConfig({ text: typed('trackedEntity,trackedEntityType,updatedAt,attributes,enrollments') }).sources[0]?.dhis2
        ?.trackedEntityType,
      'nEenWmSyUEp',
    );
    const zone = configErrorOf(() => loadConfig({ text: source('    timeZone: Africa/Nowhere\n') }));
    assert.equal(zone.path, 'sources[0].timeZone');
    assert.match(zone.message, /not an IANA time zone/);
    assert.equal(loadConfig({ text: source('    timeZone: Africa/Lusaka\n') }).sources[0]?.timeZone, 'Africa/Lusaka');
    assert.equal(loadConfig({ text: source('    timeZone: UTC\n') }).sources[0]?.timeZone, 'UTC');
    // Abbreviations ICU accepts but reads otherwise than a person would: BST is Dhaka, Etc/GMT+3 is UTC-3.
    const ambiguous: Array<[string, string]> = [
      ['BST', 'Asia/Dhaka'],
      ['IST', 'Asia/Calcutta'],
      ['Etc/GMT+3', 'Etc/GMT+3'],
    ];
    for (const [zone, reads] of ambiguous) {
      const err = configErrorOf(() => loadConfig({ text: source(`    timeZone: ${zone}\n`) }));
      assert.equal(err.path, 'sources[0].timeZone');
      assert.ok(err.message.includes(`"${zone}" is ambiguous (ICU reads it as ${reads})`), err.message);
    }
    const creds = configErrorOf(() =>
      loadConfig({ text: source('').replace('http://emr.local', 'http://admin:pw@emr.local') }),
    );
    assert.equal(creds.path, 'sources[0].baseUrl');
    assert.match(creds.message, /must not carry credentials/);
    assert.ok(!creds.message.includes('pw@'), 'the secret is not repeated');
  });

  it('names the path of a bad value inside a list', () => {
    const text = `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: not-a-url\n`;
    const err = configErrorOf(() => loadConfig({ text }));
    assert.equal(err.path, 'sources[0].baseUrl');
  });

  it('refuses a timer period past its maximum, naming the key: Node would fire such a timer after 1 ms', () => {
    // setTimeout and setInterval take at most 2^31 - 1 ms (about 24.8 days); past it they fire at once, so
    // an idle worker, or the subscription's silence check, would spin.
    const poll = configErrorOf(() =>
      loadConfig({ text: `${MINIMAL_CONFIG}delivery:\n  pollIntervalMs: 3000000000\n` }),
    );
    assert.equal(poll.path, 'delivery.pollIntervalMs');
    assert.match(poll.message, /must be <= 3600000/);
    const source = (heartbeatSeconds: number) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example.org/fhir\n` +
      `    subscription:\n      heartbeatSeconds: ${heartbeatSeconds}\n`;
    const heartbeat = configErrorOf(() => loadConfig({ text: source(5_000_000) }));
    assert.equal(heartbeat.path, 'sources[0].subscription.heartbeatSeconds');
    assert.match(heartbeat.message, /must be <= 86400/);
    assert.equal(loadConfig({ text: source(86400) }).sources[0]?.subscription?.heartbeatSeconds, 86400);
  });

  it('refuses an absurd delay, age or period at load, naming the key, and takes its largest value', () => {
    // Each is a duration the bridge does arithmetic with or waits for: a value pasted in the wrong unit
    // (3600000 "seconds") must stop the start, not turn into a timer that fires at once or a row never dead.
    const writeBack = (key: string, value: number) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example.org/fhir\n` +
      `    writeBack:\n      ${key}: ${value}\n`;
    const under = (section: string) => (key: string, value: number) =>
      `${MINIMAL_CONFIG}${section}:\n  ${key}: ${value}\n`;
    const cases: Array<{ path: string; max: number; text: (key: string, value: number) => string }> = [
      { path: 'store.payloadRetentionHours', max: 87_600, text: under('store') },
      { path: 'delivery.maxAgeHours', max: 8760, text: under('delivery') },
      { path: 'delivery.baseDelayMs', max: 3_600_000, text: under('delivery') },
      { path: 'delivery.maxDelayMs', max: 86_400_000, text: under('delivery') },
      { path: 'delivery.lockTimeoutSeconds', max: 86_400, text: under('delivery') },
      { path: 'delivery.holdProbeSeconds', max: 3600, text: under('delivery') },
      { path: 'delivery.outageHoldSeconds', max: 86_400, text: under('delivery') },
      { path: 'sources[0].writeBack.baseDelayMs', max: 3_600_000, text: writeBack },
      { path: 'sources[0].writeBack.maxDelayMs', max: 86_400_000, text: writeBack },
    ];
    for (const { path, max, text } of cases) {
      const key = path.slice(path.lastIndexOf('.') + 1);
      // Past the largest timer Node keeps (MAX_TIMER_MS in ms, in seconds, in hours): refused all the same.
      const err = configErrorOf(() => loadConfig({ text: text(key, 2 ** 31) }));
      assert.equal(err.path, path);
      assert.match(err.message, new RegExp(`must be <= ${max}\\b`), path);
      const justOver = configErrorOf(() => loadConfig({ text: text(key, max + 1) }));
      assert.equal(justOver.path, path);
      const config = loadConfig({ text: text(key, max) });
      const read = path.startsWith('sources')
        ? (config.sources[0]?.writeBack as Record<string, unknown> | undefined)?.[key]
        : (config as unknown as Record<string, Record<string, unknown>>)[path.split('.')[0] ?? '']?.[key];
      assert.equal(read, max, path);
    }
  });

  it('reads secrets from the environment and from files, never both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-config-'));
    writeFileSync(join(dir, 'secret.txt'), 'from-file\n');
    const fromEnv = loadConfig({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax under test
      text: 'opencrvs: { domain: x.org, clientId: a, clientSecret: "${OCRVS_SECRET}" }',
      env: { OCRVS_SECRET: 'from-env' },
    });
    assert.equal(fromEnv.opencrvs.clientSecret, 'from-env');
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, 'opencrvs: { domain: x.org, clientId: a, clientSecretFile: secret.txt }');
    assert.equal(loadConfig({ file }).opencrvs.clientSecret, 'from-file');
    const both = configErrorOf(() =>
      loadConfig({ text: `opencrvs: { domain: x.org, clientId: a, clientSecret: b, clientSecretFile: ${file} }` }),
    );
    assert.equal(both.path, 'opencrvs.clientSecretFile');
    // A missing file is named in full: relative paths start from the config file's folder.
    writeFileSync(file, 'opencrvs: { domain: x.org, clientId: a, clientSecretFile: nope/secret.txt }');
    const missing = configErrorOf(() => loadConfig({ file }));
    assert.equal(missing.problem, `cannot read the file ${join(dir, 'nope', 'secret.txt')} (ENOENT)`);
  });

  it("secretFiles 'none' reads no secret file (an empty one mid-rotation), 'outbound' those the bridge presents, and still checks the keys", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-config-'));
    for (const name of ['ocrvs', 'emr', 'admin', 'hook']) writeFileSync(join(dir, name), '');
    const file = join(dir, 'bridge.yaml');
    const yaml = (opencrvs: string) =>
      `opencrvs: { ${opencrvs} }\n` +
      'admin: { tokenFile: admin }\n' +
      'sources:\n' +
      '  - { id: emr, kind: fhir, baseUrl: "http://emr.local/fhir", auth: { type: bearer, tokenFile: emr }, subscription: { secretFile: hook } }\n';
    writeFileSync(file, yaml('domain: x.org, clientId: a, clientSecretFile: ocrvs'));
    assert.equal(configErrorOf(() => loadConfig({ file })).problem, 'the file is empty', 'serve and sync refuse it');
    const local = loadConfig({ file, secretFiles: 'none' });
    assert.equal(local.opencrvs.clientSecret, undefined, 'no secret is made up');
    assert.equal(local.admin.token, undefined);
    assert.equal(local.sources[0]?.auth.token, undefined);
    // Only the sources' secrets (subscriptions, which calls the EMR and never OpenCRVS).
    const sourcesOnly = configErrorOf(() => loadConfig({ file, secretFiles: 'sources' }));
    assert.equal(sourcesOnly.path, 'sources[0].auth.tokenFile');
    // sync's: the secrets it presents (OpenCRVS's first, then the source's), never the admin token nor the
    // subscription's, which only a listener checks.
    assert.equal(configErrorOf(() => loadConfig({ file, secretFiles: 'outbound' })).path, 'opencrvs.clientSecretFile');
    writeFileSync(join(dir, 'ocrvs'), 'ocrvs-secret');
    assert.equal(configErrorOf(() => loadConfig({ file, secretFiles: 'outbound' })).path, 'sources[0].auth.tokenFile');
    writeFileSync(join(dir, 'emr'), 'emr-token');
    const outbound = loadConfig({ file, secretFiles: 'outbound' });
    assert.deepEqual(
      [outbound.opencrvs.clientSecret, outbound.sources[0]?.auth.token, outbound.admin.token],
      ['ocrvs-secret', 'emr-token', undefined],
    );
    assert.equal(outbound.sources[0]?.subscription?.secret, undefined);
    writeFileSync(join(dir, 'ocrvs'), '');
    // A static token from a file, unread, still stands for the client credentials.
    writeFileSync(file, yaml('eventsUrl: "https://register.x.org/api/events", accessTokenFile: ocrvs'));
    assert.equal(loadConfig({ file, secretFiles: 'none' }).opencrvs.accessToken, undefined);
    // What the keys say is checked as always: a secret missing, given twice, or a file not named.
    writeFileSync(file, yaml('domain: x.org, clientId: a'));
    assert.equal(configErrorOf(() => loadConfig({ file, secretFiles: 'none' })).path, 'opencrvs.clientSecret');
    writeFileSync(file, yaml('domain: x.org, clientId: a, clientSecret: b, clientSecretFile: ocrvs'));
    assert.match(configErrorOf(() => loadConfig({ file, secretFiles: 'none' })).problem, /not both/);
    writeFileSync(file, yaml('domain: x.org, clientId: a, clientSecretFile: ""'));
    assert.equal(configErrorOf(() => loadConfig({ file, secretFiles: 'none' })).path, 'opencrvs.clientSecretFile');
    writeFileSync(
      file,
      yaml('domain: x.org, clientId: a, clientSecretFile: ocrvs').replace('type: bearer', 'type: none'),
    );
    assert.match(configErrorOf(() => loadConfig({ file, secretFiles: 'none' })).problem, /not used by auth type none/);
  });

  it('says which user may not read a secret file (a root:0600 file mounted into the uid 1000 image)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-config-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'secret.txt'), 'kept-from-uid\n', { mode: 0o600 });
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, 'opencrvs: { domain: x.org, clientId: a, clientSecretFile: secret.txt }', { mode: 0o644 });
    // Root reads any file: the load runs as nobody then, as another user with the file's mode 000.
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) chmodSync(join(dir, 'secret.txt'), 0o000);
    const child = await loadConfigAs(asRoot, file);
    const uid = asRoot ? 65534 : process.getuid?.();
    assert.match(
      child.stdout,
      /opencrvs\.clientSecretFile: cannot read the file .*secret\.txt \(EACCES\)/,
      child.stderr,
    );
    assert.match(child.stdout, new RegExp(`runs as uid ${uid}, which may not read it`));
    assert.doesNotMatch(child.stdout, /kept-from-uid/);
  });

  it('names the folder when it is the folder of a secret the user may not enter (a root 0700 secrets mount)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-config-'));
    chmodSync(dir, 0o755);
    const secrets = join(dir, 'secrets');
    mkdirSync(secrets);
    // The file itself is readable by all: only the folder keeps the user out.
    writeFileSync(join(secrets, 'secret.txt'), 'kept-from-uid\n', { mode: 0o644 });
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, 'opencrvs: { domain: x.org, clientId: a, clientSecretFile: secrets/secret.txt }', {
      mode: 0o644,
    });
    // Root enters any folder: the load runs as nobody then, for whom root's 0700 is closed.
    const asRoot = process.getuid?.() === 0;
    chmodSync(secrets, asRoot ? 0o700 : 0o000);
    const child = await loadConfigAs(asRoot, file);
    chmodSync(secrets, 0o700);
    const uid = asRoot ? 65534 : process.getuid?.();
    assert.match(
      child.stdout,
      /opencrvs\.clientSecretFile: cannot read the file .*secret\.txt \(EACCES\)/,
      child.stderr,
    );
    assert.ok(
      child.stdout.includes(
        `runs as uid ${uid}, which may not enter the folder ${secrets}; let that user in (chown ${uid} ${secrets}, or chmod 711 ${secrets})`,
      ),
      child.stdout,
    );
    assert.doesNotMatch(child.stdout, /kept-from-uid|which may not read it/);
  });

  it('says where YAML it cannot read is, never what the line holds (an inline secret)', () => {
    const secret = 'Zq8!kP2vR9xW';
    for (const start of ['*', '|', '!']) {
      const err = configErrorOf(() =>
        loadConfig({ text: `opencrvs:\n  domain: x.org\n  clientId: a\n  clientSecret: ${start}${secret}\n` }),
      );
      assert.match(err.path, /^line 4, column \d+$/, start);
      assert.match(err.problem, /^invalid YAML \([A-Z_]+\): put in quotes a value that begins with/, start);
      assert.ok(!err.message.includes(secret), `${start}: ${err.message}`);
    }
    // Errors quoting cannot cure say what does.
    const twice = configErrorOf(() => loadConfig({ text: `${MINIMAL_CONFIG}  clientId: again\n` }));
    assert.match(twice.problem, /^invalid YAML \(DUPLICATE_KEY\): a key is given twice in the same block: keep one/);
    const tab = configErrorOf(() => loadConfig({ text: 'opencrvs:\n\tdomain: x.org\n' }));
    assert.match(tab.problem, /^invalid YAML \(TAB_AS_INDENT\): a tab is used to indent/);
  });

  // In a block `token: ${DHIS2_PAT}` is a plain value; inside { } or [ ] its brace opens a mapping, and the
  // general quoting hint (* & ! | > …) says nothing of `$`.
  it('says to quote an environment reference written bare inside { } or [ ]', () => {
    const source = (auth: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: dhis2\n    kind: dhis2\n    baseUrl: http://dhis2.local\n    auth: ${auth}\n`;
    const env = { DHIS2_PAT: 'd2pat_kept_out_of_messages' };
    const bare = configErrorOf(() => loadConfig({ text: source(`{ type: pat, token: \${DHIS2_PAT} }`), env }));
    assert.equal(bare.path, 'line 10, column 32');
    assert.equal(
      bare.problem,
      `invalid YAML (UNEXPECTED_TOKEN): a value holding an environment reference inside { } or [ ] must be in quotes, e.g. "\${DHIS2_PAT}" (what the line says is not repeated here, since it may be a secret)`,
    );
    const inList = configErrorOf(() =>
      loadConfig({ text: `opencrvs: { domain: x.org, previousClientIds: [\${OLD_ID}] }` }),
    );
    assert.match(inList.problem, /must be in quotes, e.g\. "\$\{OLD_ID\}"/);
    // Quoted, it loads and is read from the environment.
    const quoted = loadConfig({ text: source(`{ type: pat, token: "\${DHIS2_PAT}" }`), env });
    assert.deepEqual(quoted.sources[0]?.auth, { type: 'pat', token: env.DHIS2_PAT });
    // A brace that follows no `$` keeps the general hints.
    const other = configErrorOf(() => loadConfig({ text: 'opencrvs: { domain: x.org, clientSecret: *abc }' }));
    assert.doesNotMatch(other.problem, /environment reference/);
  });

  it('refuses a secret with a line break or a control character, without quoting it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-config-'));
    writeFileSync(join(dir, 'two-lines.txt'), 'first-part\nsecond-part\n');
    writeFileSync(join(dir, 'crlf.txt'), 'windows-secret\r\n');
    const fromFile = configErrorOf(() =>
      loadConfig({ text: `opencrvs: { domain: x.org, clientId: a, clientSecretFile: ${join(dir, 'two-lines.txt')} }` }),
    );
    assert.equal(fromFile.path, 'opencrvs.clientSecretFile');
    assert.match(fromFile.problem, /line break or another control character/);
    assert.ok(!fromFile.message.includes('second-part'));
    // A Windows line end is one line: only the final \r\n goes, as a final \n does.
    const crlf = loadConfig({
      text: `opencrvs: { domain: x.org, clientId: a, clientSecretFile: ${join(dir, 'crlf.txt')} }`,
    });
    assert.equal(crlf.opencrvs.clientSecret, 'windows-secret');
    // "UTF-8 with BOM" (Notepad, PowerShell 5's Out-File): the byte-order mark is no part of the secret.
    writeFileSync(join(dir, 'bom.txt'), '\uFEFFwindows-secret\r\n');
    const bom = loadConfig({
      text: `opencrvs: { domain: x.org, clientId: a, clientSecretFile: ${join(dir, 'bom.txt')} }`,
    });
    assert.equal(bom.opencrvs.clientSecret, 'windows-secret');
    const fromEnv = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    auth: { type: bearer, token: "\${EMR_TOKEN}" }\n`,
        env: { EMR_TOKEN: 'emr-token-part1\npart2-SECRET' },
      }),
    );
    assert.equal(fromEnv.path, 'sources[0].auth.token');
    assert.ok(!fromEnv.message.includes('SECRET'));
    assert.match(fromEnv.problem, /\(from an environment variable or a YAML block value\?\)/, 'no file to blame');
    assert.match(fromFile.problem, /\(a second line in the file/);
  });

  it('refuses an auth key its type does not read, which would be ignored without a word', () => {
    const source = (auth: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    auth: ${auth}\n`;
    const stray = configErrorOf(() => loadConfig({ text: source('{ type: bearer, token: t, username: bob }') }));
    assert.equal(stray.path, 'sources[0].auth.username');
    assert.equal(stray.problem, 'is not used by auth type bearer');
    const oauth = loadConfig({
      text: source(
        '{ type: oauth2, tokenUrl: "https://sso.example/token", clientId: c, clientSecret: s, scope: "system/*.read" }',
      ),
    });
    assert.equal(oauth.sources[0]?.auth.scope, 'system/*.read');
  });

  it('refuses keys of the other kind of source, which would be ignored without a word', () => {
    const fhir = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    writeBack: { dataElement: uf3svrmp8Oj }\n`,
      }),
    );
    assert.equal(fhir.path, 'sources[0].writeBack.dataElement');
    assert.match(fhir.problem, /is for dhis2 sources; this source is kind fhir/);
    const dhis2 = configErrorOf(() =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: d\n    kind: dhis2\n    baseUrl: http://dhis2.example\n    auth: { type: basic, username: a, password: b }\n    subscription: { secret: abcdefgh-abcdefgh }\n`,
      }),
    );
    assert.equal(dhis2.path, 'sources[0].subscription');
    // Each kind's own keys, write-back included, still load.
    loadConfig({
      text: `${MINIMAL_CONFIG}sources:\n  - id: d\n    kind: dhis2\n    baseUrl: http://dhis2.example\n    auth: { type: basic, username: a, password: b }\n    writeBack: { dataElement: uf3svrmp8Oj }\n  - id: emr\n    kind: fhir\n    baseUrl: http://emr.example/fhir\n    writeBack: { target: task }\n`,
    });
  });

  it('takes alsoKnownAs on a FHIR source, normalised as baseUrl, and refuses a bad, repeated or misplaced one', () => {
    const source = (aka: string, kind = 'kind: fhir, baseUrl: "https://emr.hospital.org/openmrs/ws/fhir2/R4"') =>
      `${MINIMAL_CONFIG}sources:\n  - { id: emr, ${kind}, alsoKnownAs: ${aka} }\n`;
    const ok = loadConfig({
      text: source('["http://openmrs:8080/openmrs/ws/fhir2/R4/", "https://emr.hospital.org:8443/openmrs/ws/fhir2/R4"]'),
    });
    assert.deepEqual(ok.sources[0]?.alsoKnownAs, [
      'http://openmrs:8080/openmrs/ws/fhir2/R4',
      'https://emr.hospital.org:8443/openmrs/ws/fhir2/R4',
    ]);
    assert.equal(loadConfig({ text: source('[]') }).sources[0]?.alsoKnownAs?.length, 0);
    const refused = (aka: string, kind?: string) => {
      const err = configErrorOf(() => loadConfig({ text: source(aka, kind) }));
      return `${err.path}: ${err.problem}`;
    };
    // The schema: an http(s) URL, in a list.
    const notUrl = 'must be an absolute http(s) base URL, e.g. http://openmrs:8080/openmrs/ws/fhir2/R4';
    assert.equal(refused('["openmrs:8080/fhir"]'), `sources[0].alsoKnownAs[0]: ${notUrl}`);
    assert.equal(refused('["http://a/fhir", "ftp://b/fhir"]'), `sources[0].alsoKnownAs[1]: ${notUrl}`);
    assert.match(refused('"http://openmrs:8080/fhir"'), /^sources\[0\]\.alsoKnownAs: must be array/);
    // The load: a URL, without credentials, query or fragment; neither baseUrl nor an earlier entry again.
    assert.equal(refused('["http://a/fhir", "http://"]'), 'sources[0].alsoKnownAs[1]: is not a valid URL');
    assert.match(refused('["http://u:p@openmrs/fhir"]'), /^sources\[0\]\.alsoKnownAs\[0\]: must not carry credentials/);
    assert.equal(
      refused('["http://openmrs/fhir?_format=json"]'),
      'sources[0].alsoKnownAs[0]: must be a FHIR base URL without a query or fragment',
    );
    assert.equal(
      refused('["https://EMR.hospital.org:443/openmrs/ws/fhir2/R4/"]'),
      'sources[0].alsoKnownAs[0]: names the same FHIR base as sources[0].baseUrl',
    );
    assert.equal(
      refused('["http://openmrs:8080/fhir", "http://a/fhir", "http://OPENMRS:8080/fhir//"]'),
      'sources[0].alsoKnownAs[2]: names the same FHIR base as sources[0].alsoKnownAs[0]',
    );
    // A DHIS2 source reads no FHIR references.
    assert.equal(
      refused('["http://dhis2:8080"]', 'kind: dhis2, baseUrl: "http://dhis2.example", auth: { type: pat, token: t }'),
      'sources[0].alsoKnownAs: is for fhir sources; this source is kind dhis2 (remove it, or change kind)',
    );
  });

  it('takes openmrs on a FHIR source, its restUrl derived from an OpenMRS FHIR2 baseUrl or given', () => {
    const load = (openmrs: string, base = 'https://emr.hospital.org/openmrs/ws/fhir2/R4/', kind = 'fhir') =>
      loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - { id: emr, kind: ${kind}, baseUrl: "${base}", auth: { type: pat, token: t }, openmrs: ${openmrs} }\n`,
      }).sources[0]?.openmrs;
    const refused = (openmrs: string, base?: string, kind?: string) => {
      const err = configErrorOf(() => load(openmrs, base, kind));
      return `${err.path}: ${err.problem}`;
    };
    // Both APIs are servlets of one OpenMRS webapp.
    assert.deepEqual(load('{}'), { restUrl: 'https://emr.hospital.org/openmrs/ws/rest/v1' });
    assert.deepEqual(load('{ restUrl: "http://openmrs:8080/openmrs/ws/rest/v1/" }', 'https://emr.hospital.org/fhir'), {
      restUrl: 'http://openmrs:8080/openmrs/ws/rest/v1',
    });
    // Another baseUrl says nothing of where REST is.
    assert.match(
      refused('{}', 'https://emr.hospital.org/fhir'),
      /^sources\[0\]\.openmrs\.restUrl: is required: baseUrl does not end in \/ws\/fhir2\/R4/,
    );
    assert.match(
      refused('{ restUrl: "http://u:p@openmrs/ws/rest/v1" }'),
      /^sources\[0\]\.openmrs\.restUrl: must not carry credentials/,
    );
    assert.equal(
      refused('{}', 'http://dhis2.example', 'dhis2'),
      'sources[0].openmrs: is for fhir sources; this source is kind dhis2 (remove it, or change kind)',
    );
  });

  it('reports an unset environment variable with its key path', () => {
    const err = configErrorOf(() =>
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax under test
      loadConfig({ text: 'opencrvs: { domain: x.org, clientId: a, clientSecret: "${NOPE}" }' }),
    );
    assert.equal(err.path, 'opencrvs.clientSecret');
    assert.match(err.message, /NOPE is not set/);
  });

  it('requires credentials and knows single-call needs 2.0', () => {
    assert.equal(
      configErrorOf(() => loadConfig({ text: 'opencrvs: { domain: x.org, clientId: a }' })).path,
      'opencrvs.clientSecret',
    );
    const err = configErrorOf(() =>
      loadConfig({ text: `${MINIMAL_CONFIG}  version: "1.9"\ndelivery: { mode: single-call }\n` }),
    );
    assert.equal(err.path, 'delivery.mode');
  });

  it('fills source defaults and rejects duplicate ids', () => {
    const text = `${MINIMAL_CONFIG}sources:\n  - { id: emr, kind: fhir, baseUrl: "http://emr/fhir" }\n  - { id: emr, kind: fhir, baseUrl: "http://emr2/fhir" }\n`;
    assert.equal(configErrorOf(() => loadConfig({ text })).path, 'sources[1].id');
    const ok = loadConfig({
      text: `${MINIMAL_CONFIG}sources:\n  - { id: emr, kind: fhir, baseUrl: "http://emr/fhir" }\n`,
    });
    assert.deepEqual(ok.sources[0]?.mappings, ['birth.fhir', 'death.fhir']);
    assert.equal(ok.sources[0]?.poll.overlapSeconds, 30);
  });

  it('checks where the first sync starts: an ISO date in since, or sinceDays, not both', () => {
    const source = (poll: string) =>
      `${MINIMAL_CONFIG}sources:\n  - { id: emr, kind: fhir, baseUrl: "http://emr/fhir", poll: ${poll} }\n`;
    for (const since of ['2026-01-31', '2026-01-31T00:00:00Z', '2026-01-31T08:00:00.000+03:00', '2026-01-31T08:00']) {
      assert.equal(loadConfig({ text: source(`{ since: "${since}" }`) }).sources[0]?.poll.since, since);
    }
    for (const since of ['last month', '2026-13-01', '31/01/2026', '2026-01-31 08:00']) {
      const err = configErrorOf(() => loadConfig({ text: source(`{ since: "${since}" }`) }));
      assert.equal(err.path, 'sources[0].poll.since', since);
      assert.match(err.message, /ISO 8601 date or date-time/);
    }
    assert.equal(loadConfig({ text: source('{ sinceDays: 30 }') }).sources[0]?.poll.sinceDays, 30);
    assert.equal(
      configErrorOf(() => loadConfig({ text: source('{ sinceDays: -1 }') })).path,
      'sources[0].poll.sinceDays',
    );
    const both = configErrorOf(() => loadConfig({ text: source('{ since: "2026-01-31", sinceDays: 30 }') }));
    assert.equal(both.path, 'sources[0].poll.sinceDays');
    assert.match(both.message, /either since or sinceDays/);
  });

  it("refuses a zoned poll.since on a DHIS2 source, whose times are DHIS2's local time, as sync --since does", () => {
    const source = (since: string) =>
      `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: "http://emr/fhir"\n  - id: hmis\n    kind: dhis2\n    baseUrl: "http://dhis2.local"\n    poll: { since: "${since}" }\n`;
    for (const since of ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000+03:00', '2026-01-01T08:00-05:00']) {
      const err = configErrorOf(() => loadConfig({ text: source(since) }));
      assert.equal(err.path, 'sources[1].poll.since', since);
      assert.match(err.problem, /is DHIS2's local time: give it without a zone/);
    }
    for (const since of ['2026-01-01', '2026-01-01T00:00:00', '2026-01-01T00:00:00.000'])
      assert.equal(loadConfig({ text: source(since) }).sources[1]?.poll.since, since);
  });
});
