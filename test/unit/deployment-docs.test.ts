// docs/deployment.md stays true to the code: every key of the configuration schema is in its reference,
// the reference is what scripts/config-reference.mjs generates, every metric the bridge registers is
// described, the example configuration it points to is valid, and its backup recipes keep the copy private.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { checkSourceIds, GENERIC_SOURCE_IDS } from '../../src/doctor/source-ids.js';
import { loadMappings, sourceMappingOptions } from '../../src/mapping/index.js';
import { BridgeMetrics } from '../../src/observability/metrics.js';
import { CHILD_PROGRAMME, DEATH_PROGRAMME } from '../../src/sandbox/dhis2/constants.js';
import { unreachableMappingWarnings } from '../../src/sources/dhis2/mapping-codes.js';
import { checkSourceMappings } from '../../src/sources/overlap.js';
import { CHECKOUT } from '../support/checkout.js';

const root = CHECKOUT;
const doc = readFileSync(`${root}docs/deployment.md`, 'utf8');
const schema: unknown = JSON.parse(readFileSync(`${root}profiles/config.schema.json`, 'utf8'));

type Node = Record<string, unknown>;
const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Key paths of the schema, written as the reference writes them: `a.b`, `list[].c`, `map.<key>.d`. */
function keyPaths(rootSchema: Node): string[] {
  const definitions = isNode(rootSchema.definitions) ? rootSchema.definitions : {};
  const deref = (node: unknown): Node => {
    if (!isNode(node)) return {};
    if (typeof node.$ref !== 'string') return node;
    return deref(definitions[node.$ref.replace('#/definitions/', '')]);
  };
  const paths: string[] = [];
  const visit = (node: unknown, path: string) => {
    const resolved = deref(node);
    if (path) paths.push(path);
    const items = resolved.type === 'array' ? deref(resolved.items) : undefined;
    if (items && isNode(items.properties))
      for (const [k, v] of Object.entries(items.properties)) visit(v, `${path}[].${k}`);
    if (isNode(resolved.properties))
      for (const [k, v] of Object.entries(resolved.properties)) visit(v, path ? `${path}.${k}` : k);
    const map = isNode(resolved.additionalProperties) ? deref(resolved.additionalProperties) : undefined;
    if (map && isNode(map.properties))
      for (const [k, v] of Object.entries(map.properties)) visit(v, `${path}.<key>.${k}`);
  };
  visit(rootSchema, '');
  return paths;
}

describe('docs/deployment.md', () => {
  it('has every key path of profiles/config.schema.json in its configuration reference, with a description', () => {
    assert.ok(isNode(schema));
    const paths = keyPaths(schema);
    assert.ok(paths.length > 60, `only ${paths.length} key paths found`);
    const rows = new Map<string, string>();
    for (const line of doc.split('\n')) {
      const match = /^\| `([^`]+)` \|(.*)\|\s*$/.exec(line);
      if (match?.[1]) rows.set(match[1], match[2] ?? '');
    }
    const missing = paths.filter((p) => !rows.has(p));
    assert.deepEqual(missing, [], 'run: node scripts/config-reference.mjs --write');
    const undescribed = paths.filter((p) => (rows.get(p) ?? '').split(' | ').at(-1)?.trim() === '');
    assert.deepEqual(undescribed, [], 'add a description (schema or scripts/config-reference.mjs SUPPLEMENT)');
  });

  it('has the configuration reference as the generator writes it (a row edited by hand is lost at the next --write)', () => {
    const check = spawnSync(process.execPath, [`${root}scripts/config-reference.mjs`, '--check'], { encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stderr}(edit profiles/config.schema.json or the script's SUPPLEMENT)`);
  });

  it('describes every metric the bridge registers', async () => {
    const metrics = new BridgeMetrics({ processMetrics: false });
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length >= 10);
    for (const name of names) assert.ok(doc.includes(`\`${name}\``), `${name} is not in docs/deployment.md`);
  });

  it('points at an example configuration that validates', () => {
    const token = 'an-admin-token-from-the-environment';
    const config = loadConfig({ file: `${root}examples/bridge.yaml`, env: { BRIDGE_ADMIN_TOKEN: token } });
    assert.equal(
      config.admin.token,
      token,
      'the admin token comes from the environment, none is written in the example',
    );
    assert.throws(
      () => loadConfig({ file: `${root}examples/bridge.yaml`, env: {} }),
      /admin\.token: environment variable BRIDGE_ADMIN_TOKEN is not set/,
    );
    assert.equal(config.sources[0]?.baseUrl, 'http://127.0.0.1:8090/fhir');
    assert.equal(config.opencrvs.tokenUrl, 'http://127.0.0.1:7070/auth/token');
    assert.equal(config.routing.defaultOffice, 'LHUYvwY2Aq1');
    assert.match(doc, /\(\.\.\/examples\/bridge\.yaml\)/);
  });
});

describe('docs/dhis2.md', () => {
  it("gives a source's poll settings the configuration takes (a DHIS2 start without a zone)", () => {
    const guide = readFileSync(`${root}docs/dhis2.md`, 'utf8');
    const block = /## 4\. Configure the source\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(guide)?.[1];
    assert.ok(block, 'the YAML of section 4');
    const sources = (parse(block) as { sources: Array<{ kind: string; poll?: unknown }> }).sources;
    const polls = sources.filter((s) => s.poll !== undefined);
    assert.ok(polls.length > 0);
    for (const { kind, poll } of polls) {
      const source = { id: 'hmis', kind, baseUrl: 'https://dhis2.example.org', poll };
      const config = { opencrvs: { domain: 'farajaland.example.org', accessToken: 't' }, sources: [source] };
      assert.doesNotThrow(() => loadConfig({ text: JSON.stringify(config) }));
    }
  });
});

describe('examples/dhis2.yaml and the configuration of docs/dhis2.md', () => {
  it("the example validates, one source per sandbox programme, each mapping reading its source's programme", () => {
    const config = loadConfig({ file: `${root}examples/dhis2.yaml` });
    const programmes = config.sources.map((s) => [s.dhis2?.program, s.mappings]);
    assert.deepEqual(programmes, [
      [CHILD_PROGRAMME, ['birth.dhis2']],
      [DEATH_PROGRAMME, ['death.dhis2']],
    ]);
    const sets = config.sources.map((s) => loadMappings(sourceMappingOptions(config.opencrvs, config.routing, s)));
    assert.doesNotThrow(() => checkSourceMappings(config, (i) => sets[i]?.mappings));
    assert.deepEqual(
      unreachableMappingWarnings(config.sources, (i) => sets[i]?.mappings),
      [],
    );
    // Its ids are examples: doctor warns whoever copies them into production.
    assert.equal(checkSourceIds(config).length, config.sources.length);
    assert.match(readFileSync(`${root}docs/dhis2.md`, 'utf8'), /\(\.\.\/examples\/dhis2\.yaml\)/);
  });

  it("the guide's whole configuration loads", () => {
    const guide = readFileSync(`${root}docs/dhis2.md`, 'utf8');
    const block = /## 4\. Configure the source\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(guide)?.[1] ?? '';
    const parsed = parse(block) as { sources: Array<{ id: string; mappings?: string[] }> };
    assert.ok(parsed.sources.length >= 2);
    // The site's mapping copies and secret files are not here: shipped mappings and unread files stand in.
    for (const source of parsed.sources) delete source.mappings;
    const config = loadConfig({ text: JSON.stringify(parsed), secretFiles: 'none' });
    assert.equal(config.sources.length, parsed.sources.length);
  });
});

describe('source ids of the examples and docs', () => {
  // Whoever copies an example keeps its source id, and so does the next site: doctor warns about each one
  // (docs/dhis2.md and deployment.md say so), which it can only do if none is missing from its list.
  it('are all ids doctor warns about as an example id', () => {
    const configs: Array<{ where: string; text: string }> = [];
    for (const file of ['README.md', ...readdirSync(`${root}docs`).map((f) => `docs/${f}`)].filter((f) =>
      f.endsWith('.md'),
    ))
      for (const m of readFileSync(`${root}${file}`, 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g))
        configs.push({ where: file, text: m[1] ?? '' });
    for (const file of readdirSync(`${root}examples`).filter((f) => f.endsWith('.yaml')))
      configs.push({ where: `examples/${file}`, text: readFileSync(`${root}examples/${file}`, 'utf8') });
    const ids: Array<{ where: string; id: unknown }> = [];
    for (const { where, text } of configs.filter((c) => /^\s*sources:/m.test(c.text))) {
      // A fragment that does not parse would hide its ids from this test: every block with sources parses.
      const parsed = parse(text) as { sources?: unknown };
      assert.ok(Array.isArray(parsed?.sources), `${where}: sources is a list`);
      for (const source of parsed.sources as Array<{ id?: unknown }>) ids.push({ where, id: source.id });
    }
    for (const where of ['docs/dhis2.md', 'docs/deployment.md', 'examples/production.yaml', 'examples/dhis2.yaml'])
      assert.ok(
        ids.some((i) => i.where === where),
        `no source id found in ${where}`,
      );
    const missing = ids.filter(({ id }) => typeof id !== 'string' || !GENERIC_SOURCE_IDS.includes(id.toLowerCase()));
    assert.deepEqual(missing, []);
  });
});

describe('example locations', () => {
  it('are Farajaland offices and facilities of its locations CSV, so doctor passes on a copied example', () => {
    const csv = readFileSync(`${root}profiles/opencrvs/farajaland/locations/locations.csv`, 'utf8');
    const types = new Map(
      csv
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split(','))
        .map(([id, , , type]) => [id ?? '', (type ?? '').trim()]),
    );
    const yamlOf = (file: string) =>
      file.endsWith('.md')
        ? [...readFileSync(`${root}${file}`, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n')
        : readFileSync(`${root}${file}`, 'utf8');
    const files = [
      'README.md',
      ...readdirSync(`${root}docs`).map((f) => `docs/${f}`),
      ...readdirSync(`${root}examples`)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => `examples/${f}`),
    ];
    const named: Array<{ where: string; id: string; type: string }> = [];
    for (const file of files) {
      for (const m of yamlOf(file).matchAll(/\b(defaultOffice|office|facility):\s*["']?([^\s,}"'#]+)/g))
        named.push({ where: file, id: m[2] ?? '', type: m[1] === 'facility' ? 'HEALTH_FACILITY' : 'CRVS_OFFICE' });
    }
    // The schema's description of a location reference gives one as an example too.
    const described = /Farajaland's '([^']+)'/.exec(JSON.stringify(schema))?.[1];
    assert.ok(described, "the schema's example externalId");
    named.push({ where: 'profiles/config.schema.json', id: described, type: 'CRVS_OFFICE' });
    assert.ok(named.length >= 10, `only ${named.length} example locations found`);
    const wrong = named.filter(({ id, type }) => types.get(id) !== type);
    assert.deepEqual(wrong, [], 'use an id of profiles/opencrvs/farajaland/locations/locations.csv');
  });
});

describe('the backup recipes of docs/deployment.md', () => {
  it('copy the ledger while another connection commits, into a file only its owner may read', async () => {
    // Run as written, with /data and /backup in a temporary folder and the usual umask (022): SQLite
    // creates a new file 0644 unless the recipe says otherwise. A writer commits every 200 ms meanwhile,
    // as serve does, and each copy must still be a whole, consistent ledger.
    const dir = mkdtempSync(join(tmpdir(), 'backup-recipe-'));
    const previous = process.umask(0o022);
    const ledger = join(dir, 'bridge.db');
    const made = spawnSync(
      process.execPath,
      [
        '-e',
        `const db = require('better-sqlite3')(${JSON.stringify(ledger)}); db.pragma('journal_mode = WAL');
         db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
         db.exec('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO t (body) SELECT randomblob(2000) FROM n');`,
      ],
      { cwd: root },
    );
    assert.equal(made.status, 0, made.stderr.toString());
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const db = require('better-sqlite3')(${JSON.stringify(ledger)});
         const add = db.prepare('INSERT INTO t (body) VALUES (randomblob(2000))');
         setInterval(() => add.run(), 200); setTimeout(() => process.exit(0), 60000);`,
      ],
      { cwd: root, stdio: 'ignore' },
    );
    try {
      const section = doc.slice(doc.indexOf('## 8. Backup and restore'), doc.indexOf('### Reclaiming disk space'));
      const node = /docker exec -w \/app opencrvs-bridge node -e "([^"]+)"/.exec(section)?.[1];
      assert.ok(node, "the recipe with the image's Node");
      const sqlite = [...section.matchAll(/^ *(\(?[^\n]*sqlite3 [^\n]*\/data\/bridge\.db [^\n]+)$/gm)].map(
        (m) => m[1] ?? '',
      );
      assert.equal(sqlite.length, 1, 'the sqlite3 recipe');
      const local = (text: string) => text.replaceAll('/data/', `${dir}/`).replaceAll('/backup/', `${dir}/`);
      const copies: string[] = [];
      const byNode = spawnSync(process.execPath, ['-e', local(node)], { cwd: root, timeout: 30_000 });
      assert.equal(byNode.status, 0, byNode.stderr.toString());
      copies.push(join(dir, 'backup.db'));
      // The sqlite3 CLI is not on every machine that runs the tests (the image has none).
      if (spawnSync('sqlite3', ['-version']).status === 0) {
        for (const [i, line] of sqlite.entries()) {
          const copy = join(dir, `copy-${i}.db`);
          // Run from the temporary folder, its paths relative: the shell would split or choke on a folder name
          // with a space or a parenthesis (TMPDIR) put into the line as it is.
          const relative = line.replaceAll('/data/', './').replaceAll('/backup/', './');
          const run = spawnSync('sh', ['-c', relative.replaceAll(/bridge-\$\(date \+%F\)\.db/g, `copy-${i}.db`)], {
            cwd: dir,
            timeout: 30_000,
          });
          assert.equal(run.status, 0, run.stderr.toString());
          copies.push(copy);
        }
      }
      for (const copy of copies) {
        assert.equal((statSync(copy).mode & 0o777).toString(8), '600', copy);
        const check = spawnSync(
          process.execPath,
          [
            '-e',
            `const db = require('better-sqlite3')(${JSON.stringify(copy)}, { readonly: true });
             console.log(JSON.stringify([db.pragma('integrity_check', { simple: true }), db.prepare('SELECT count(*) AS n FROM t').get().n]));`,
          ],
          { cwd: root },
        );
        assert.equal(check.status, 0, check.stderr.toString());
        const [integrity, rows] = JSON.parse(check.stdout.toString()) as [string, number];
        assert.equal(integrity, 'ok', copy);
        assert.ok(rows >= 2000, `${copy}: ${rows} rows`);
      }
      // The target must not exist: run again, the recipe refuses rather than overwrite or append.
      const again = spawnSync(process.execPath, ['-e', local(node)], { cwd: root, timeout: 30_000 });
      assert.notEqual(again.status, 0);
      assert.match(again.stderr.toString(), /output file already exists/);
    } finally {
      writer.kill();
      process.umask(previous);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The upgrade steps quote what this build prints (`--version`, the migration line, doctor's): a quote naming
// an older schema reads as an upgrade that stops short. The changelog's released sections are history.
describe('the ledger schema the docs quote', () => {
  it("is the newest migration's, in docs/, README.md and the changelog's unreleased part", () => {
    const latest = Math.max(
      ...readdirSync(`${root}src/ledger/migrations`)
        .map((file) => /^(\d{3})-/.exec(file)?.[1])
        .filter((n) => n !== undefined)
        .map(Number),
    );
    const changelog = readFileSync(`${root}CHANGELOG.md`, 'utf8');
    const released = changelog.search(/^## (?!Unreleased)/m);
    const texts: Record<string, string> = {
      'CHANGELOG.md': released < 0 ? changelog : changelog.slice(0, released),
      'README.md': readFileSync(`${root}README.md`, 'utf8'),
    };
    for (const file of readdirSync(`${root}docs`).filter((f) => f.endsWith('.md')))
      texts[`docs/${file}`] = readFileSync(`${root}docs/${file}`, 'utf8');
    const quotes = /(?:ledger\s+schema|created\s+at\s+schema|from\s+schema\s+\d+\s+to)\s+(\d+)/g;
    const stale: string[] = [];
    let seen = 0;
    for (const [file, text] of Object.entries(texts))
      for (const match of text.matchAll(quotes)) {
        seen++;
        if (Number(match[1]) !== latest) stale.push(`${file}: ${match[0].replace(/\s+/g, ' ')}`);
      }
    assert.ok(seen >= 5, `the quotes are found (${seen})`);
    assert.deepEqual(stale, [], `schema ${latest} is the newest`);
  });
});
