// A DHIS2 source polls one programme and DHIS2 lists only the enrollments in it: a mapping whose
// `codes.program` names another programme can never trigger. None of a source's mappings matching is a
// configuration error (the source would poll for nothing), some of them a warning; both name the key paths.
// With no `mappings:`, a DHIS2 source takes the shipped mappings of its programme.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { type BridgeConfig, ConfigError, configFromObject, packagePaths } from '../../src/config/index.js';
import { loadMappings, sourceMappingOptions } from '../../src/mapping/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { unreachableMappingWarnings } from '../../src/sources/dhis2/mapping-codes.js';
import { checkSourceMappings } from '../../src/sources/overlap.js';

const dir = mkdtempSync(join(tmpdir(), 'dhis2-programme-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(sources: Array<Record<string, unknown>>, name = 'unused'): BridgeConfig {
  return configFromObject({
    // Never contacted: nothing here starts the bridge.
    opencrvs: { domain: 'opencrvs.example.org', clientId: 'c', clientSecret: 'not-a-real-secret' },
    store: { path: join(dir, `${name}.db`) },
    sources: sources.map((s, i) => ({ id: `hmis-${i}`, kind: 'dhis2', baseUrl: `http://dhis2-${i}.example`, ...s })),
    routing: { defaultOffice: 'LHUYvwY2Aq1' },
  });
}

/** What serve, sync, validate and doctor run once the sources' mappings are loaded. */
function check(loaded: BridgeConfig) {
  const sets = loaded.sources.map((s) => loadMappings(sourceMappingOptions(loaded.opencrvs, loaded.routing, s)));
  const mappingsOf = (i: number) => sets[i]?.mappings;
  let error: ConfigError | undefined;
  try {
    checkSourceMappings(loaded, mappingsOf);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    error = err;
  }
  return { error, warnings: unreachableMappingWarnings(loaded.sources, mappingsOf).map((w) => w.message) };
}

describe('DHIS2 mappings against the programme their source polls', () => {
  it('warns, naming the key paths, about a source none of whose mappings seems to read its programme', () => {
    const loaded = config([
      { dhis2: { program: 'IpHINAT79UW' } },
      { dhis2: { program: 'SbxDthProg1' }, mappings: ['birth.dhis2'] },
    ]);
    const { error, warnings } = check(loaded);
    // Not refused: the reading of the trigger cannot follow every FHIRPath form (not(), or, iif), and a
    // configuration that works would then stop at start.
    assert.equal(error, undefined);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(
      warnings[0] ?? '',
      /^no mapping of source "hmis-1" seems able to match sources\[1\]\.dhis2\.program SbxDthProg1: sources\[1\]\.mappings\[0\] \(birth\.dhis2\) tests codes\.program \[IpHINAT79UW\]\. .*poll and notify nothing/,
    );
  });

  it('warns, naming sources[i].mappings[j] and sources[i].dhis2.program, when only some cannot match', () => {
    const loaded = config([{ mappings: ['birth.dhis2', 'death.dhis2'] }]);
    const { error, warnings } = check(loaded);
    assert.equal(error, undefined);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(
      warnings[0] ?? '',
      /^sources\[0\]\.mappings\[1\] \(death\.dhis2\) tests codes\.program \[SbxDthProg1\], not sources\[0\]\.dhis2\.program IpHINAT79UW: .*never notifies a death/,
    );
    // Each mapping with its own programme's source: nothing to say.
    const split = config([
      { mappings: ['birth.dhis2'] },
      { dhis2: { program: 'SbxDthProg1' }, mappings: ['death.dhis2'] },
    ]);
    assert.deepEqual(check(split), { error: undefined, warnings: [] });
  });

  it("judges a site's copy by the programme set its expressions test, whatever the set is called", () => {
    const shipped = readFileSync(join(packagePaths.mappings, 'birth.dhis2.yaml'), 'utf8');
    const copy = join(dir, 'birth.site.yaml');
    writeFileSync(
      copy,
      shipped
        .replace(/^id: birth\.dhis2$/m, 'id: birth.site')
        .replace('program: [IpHINAT79UW]', 'childProgramme: [IpHINAT79UW, SbxDthProg1]')
        .replaceAll("program.coded('program')", "program.coded('childProgramme')"),
    );
    const loaded = config([{ dhis2: { program: 'SbxDthProg1' }, mappings: [copy] }]);
    assert.deepEqual(check(loaded), { error: undefined, warnings: [] });
    writeFileSync(copy, readFileSync(copy, 'utf8').replace('[IpHINAT79UW, SbxDthProg1]', '[IpHINAT79UW]'));
    assert.match(
      check(loaded).warnings.join('\n'),
      /sources\[0\]\.mappings\[0\] \(birth\.site\) tests codes\.childProgramme/,
    );
  });

  it('compares a `system|uid` entry as coded() does when the mapping runs: it names the programme', () => {
    const shipped = readFileSync(join(packagePaths.mappings, 'death.dhis2.yaml'), 'utf8');
    const copy = join(dir, 'death.system.yaml');
    writeFileSync(
      copy,
      shipped
        .replace(/^id: death\.dhis2$/m, 'id: death.system')
        .replace('program: [SbxDthProg1]', "program: ['dhis2|SbxDthProg1']"),
    );
    const loaded = config([{ dhis2: { program: 'SbxDthProg1' }, mappings: [copy] }]);
    // The enrollment the mapping runs on is found through that entry: the configuration works.
    const [mapping] = loadMappings(sourceMappingOptions(loaded.opencrvs, loaded.routing, loaded.sources[0]!)).mappings;
    const person = { trackedEntity: 'Te000000001', enrollments: [{ program: 'SbxDthProg1', status: 'ACTIVE' }] };
    const enrollment = mapping?.context.find((c) => c.name === 'enrollment')?.exprs[0];
    assert.deepEqual(enrollment?.evaluate(person, { subject: person }), [person.enrollments[0]]);
    assert.deepEqual(check(loaded), { error: undefined, warnings: [] });
  });

  it("judges only tests of the subject's own enrollments, not the mother's", () => {
    const shipped = readFileSync(join(packagePaths.mappings, 'birth.dhis2.yaml'), 'utf8');
    const copy = join(dir, 'birth.anc.yaml');
    // A mapping that takes the child's enrollment, whatever the programme, and reads whether the mother is
    // in an antenatal programme: DHIS2 lists the mother outside the programme polled.
    const anc = (childProgramme: string, ancProgramme: string) =>
      shipped
        .replace(/^id: birth\.dhis2$/m, 'id: birth.anc')
        .replace('program: [IpHINAT79UW]', `program: [${childProgramme}]\n  anc: [${ancProgramme}]`)
        .replace(
          /^trigger:$/m,
          `  motherAnc:\n    value: "%mother.enrollments.where(program.coded('anc')).first()"\ntrigger:`,
        );
    writeFileSync(copy, anc('IpHINAT79UW', 'AncProg0001').replace("program.coded('program') and ", ''));
    const loaded = config([{ dhis2: { program: 'SbxDthProg1' }, mappings: [copy] }]);
    assert.deepEqual(check(loaded), { error: undefined, warnings: [] });
    // The mother's set naming the programme polled does not make the child's test of another one match.
    writeFileSync(copy, anc('IpHINAT79UW', 'SbxDthProg1'));
    assert.match(check(loaded).warnings.join('\n'), /\(birth\.anc\) tests codes\.program \[IpHINAT79UW\]\./);
  });

  it('judges only the tests the trigger depends on, not an unless rule or a field', () => {
    const shipped = readFileSync(join(packagePaths.mappings, 'birth.dhis2.yaml'), 'utf8');
    const copy = join(dir, 'birth.unless.yaml');
    // The trigger takes the child's enrollment whatever its programme; an unless rule leaves out children
    // also enrolled in another programme (a test that never holds here, and never stops a birth).
    const unless = (text: string) =>
      text
        .replace(/^id: birth\.dhis2$/m, 'id: birth.unless')
        .replace('program: [IpHINAT79UW]', 'program: [IpHINAT79UW]\n  transferred: [WSGAb5XwJ3Y]')
        .replace(
          /^ {2}unless:$/m,
          '  unless:\n    - reason: transferred\n      if: "%subject.enrollments.where(program.coded(\'transferred\')).exists()"',
        );
    writeFileSync(copy, unless(shipped).replace("program.coded('program') and ", ''));
    const loaded = config([{ dhis2: { program: 'SbxDthProg1' }, mappings: [copy] }]);
    assert.deepEqual(check(loaded), { error: undefined, warnings: [] });
    // With the trigger's own programme test back, that one is judged (and the unless rule's set does not count).
    writeFileSync(copy, unless(shipped));
    assert.match(check(loaded).warnings.join('\n'), /\(birth\.unless\) tests codes\.program \[IpHINAT79UW\]\./);
  });

  it('gives a source without mappings the shipped ones of its programme, and all of them (warned) for another', () => {
    const [child, death, other, fhir] = config([
      {},
      { dhis2: { program: 'SbxDthProg1' } },
      { dhis2: { program: 'WSGAb5XwJ3Y' } },
      { kind: 'fhir', baseUrl: 'http://emr.example/fhir' },
    ]).sources;
    assert.deepEqual(child?.mappings, ['birth.dhis2']);
    assert.deepEqual(death?.mappings, ['death.dhis2']);
    assert.deepEqual(other?.mappings, ['birth.dhis2', 'death.dhis2']);
    assert.deepEqual(fhir?.mappings, ['birth.fhir', 'death.fhir']);
    const { error, warnings } = check(config([{ dhis2: { program: 'WSGAb5XwJ3Y' } }]));
    assert.equal(error, undefined);
    assert.match(
      warnings.join('\n'),
      /seems able to match sources\[0\]\.dhis2\.program WSGAb5XwJ3Y: .*\(birth\.dhis2\).*\(death\.dhis2\)/,
    );
  });

  it('the bridge starts on both, and logs the warning once for each', async () => {
    const none: string[] = [];
    const noneLogger = createLogger({ level: 'warn', destination: { write: (line: string) => none.push(line) } });
    const started = new Bridge(config([{ dhis2: { program: 'SbxDthProg1' }, mappings: ['birth.dhis2'] }], 'none'), {
      logger: noneLogger,
      schedule: false,
      http: false,
      worker: false,
    });
    await started.stop();
    const said = none.map((line) => String(JSON.parse(line).msg)).filter((m) => m.includes('codes.program'));
    assert.equal(said.length, 1, none.join('\n'));
    assert.match(
      said[0] ?? '',
      /^no mapping of source .* seems able to match sources\[0\]\.dhis2\.program SbxDthProg1/,
    );
    const lines: string[] = [];
    const warnLogger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const bridge = new Bridge(config([{ mappings: ['birth.dhis2', 'death.dhis2'] }], 'warned'), {
      logger: warnLogger,
      schedule: false,
      http: false,
      worker: false,
    });
    await bridge.stop();
    const messages = lines.map((line) => String(JSON.parse(line).msg)).filter((m) => m.includes('codes.program'));
    assert.equal(messages.length, 1, lines.join('\n'));
    assert.match(
      messages[0] ?? '',
      /^sources\[0\]\.mappings\[1\] \(death\.dhis2\) .* sources\[0\]\.dhis2\.program IpHINAT79UW/,
    );
  });
});
