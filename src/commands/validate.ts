// `opencrvs-bridge validate [--config FILE]`: static checks of the configuration and of every mapping it
// names (or every mapping in mappings/) against the OpenCRVS form profile. One line per mapping; exit 0/2.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type BridgeConfig, ConfigError, loadConfig, packagePaths, type SecretFileReading } from '../config/index.js';
import { noSourcesWarning } from '../config/warnings.js';
import {
  type LoadMappingsOptions,
  loadMappings,
  MappingLoadError,
  type MappingSet,
  mappingFile,
  mappingOptionsFromConfig,
  sourceMappingOptions,
} from '../mapping/index.js';
import { unreachableMappingWarnings } from '../sources/dhis2/mapping-codes.js';
import { checkSourceMappings } from '../sources/overlap.js';
import { configPath, LOCAL_ONLY, loadConfigOrReport } from './options.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(
      'Check the configuration and the mappings (field ids, options, value types, FHIRPath) without sending. Secrets are not needed: one this machine lacks (an unset environment variable, an unreadable file) is a warning.',
    )
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG; without one, every mapping in mappings/)')
    .action((options: { config?: string }) => runValidate(options));
}

/**
 * What reading the configuration's secrets (`${NAME}`, `…File`) on this machine finds wrong, or undefined:
 * the first problem, as serve would stop on it, naming the key and the variable or file, never a value.
 */
function secretsProblemHere(file: string | undefined): string | undefined {
  const problem = (secretFiles: SecretFileReading) => {
    try {
      loadConfig({ file, env: process.env, secretFiles });
      return undefined;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.message;
    }
  };
  const all = problem('all');
  if (all === undefined) return undefined;
  // sync reads only the secrets it presents: the admin token's and the subscriptions' do not stop it.
  const stopping = problem('outbound') === undefined ? 'serve and replay' : 'serve, sync and replay';
  return `${all} (on this machine ${stopping} would stop on it: validate checks the configuration without its secrets, and doctor checks them where the bridge runs)`;
}

function runValidate(options: { config?: string }): void {
  let base: LoadMappingsOptions = {};
  let config: BridgeConfig | undefined;
  if (!configPath(options.config)) {
    // A site's own copies are named by path in its config: without one, only the shipped files are seen.
    console.log(
      `note  no configuration (--config or BRIDGE_CONFIG): checking the shipped mappings in ${packagePaths.mappings}; ` +
        "a site's own mapping files are checked with --config",
    );
  } else {
    // The shape only: validate runs where the bridge does not (CI, a laptop), without its secrets. A secret
    // this machine lacks is said as a warning; serve, sync, replay and doctor refuse it where they run.
    config = loadConfigOrReport(options.config, undefined, LOCAL_ONLY);
    if (!config) return;
    console.log(`ok    configuration ${configPath(options.config)}`);
    const secrets = secretsProblemHere(configPath(options.config));
    if (secrets) console.log(`warn  ${secrets}`);
    const noSources = noSourcesWarning(config.sources);
    if (noSources) console.log(`warn  ${noSources}`);
    base = mappingOptionsFromConfig(config);
  }
  const dir = base.dir ?? packagePaths.mappings;
  let files: string[];
  try {
    files = base.names
      ? base.names.map((n) => mappingFile(n, dir))
      : readdirSync(dir)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
          .map((f) => join(dir, f));
  } catch {
    console.error(`error ${dir}: mappings folder not found`);
    process.exitCode = 2;
    return;
  }
  let failed = false;
  for (const file of files) {
    try {
      const [m] = loadMappings({ ...base, names: undefined, files: [file] }).mappings;
      if (!m) continue;
      // A source of the other kind that names it (sync and serve refuse it too).
      const owner = config?.sources.find(
        (s) => s.kind !== m.source && s.mappings.some((n) => mappingFile(n, dir) === file),
      );
      if (owner) loadMappings({ ...base, names: undefined, files: [file], forSource: owner });
      const p = m.profile;
      console.log(
        `ok    ${m.id} (${file}; ${m.eventType} from ${m.source}, OpenCRVS ${p.country} v${p.version}): ` +
          `${m.fields.length} fields, ${m.context.length} context items, ${m.expressions.length} expressions`,
      );
    } catch (err) {
      if (!(err instanceof MappingLoadError)) throw err;
      failed = true;
      console.log(`error ${err.message}`);
    }
  }
  // Each file alone can be fine while a source's set is not (two files with one mapping id: a copy of a
  // shipped mapping whose id was kept). Checked as serve and sync load it, so ok here means they start;
  // after the files alone pass, so a file's own error is not said twice.
  if (config && !failed) {
    const sets: MappingSet[] = [];
    for (const source of config.sources) {
      try {
        sets.push(loadMappings(sourceMappingOptions(config.opencrvs, config.routing, source)));
      } catch (err) {
        if (!(err instanceof MappingLoadError)) throw err;
        failed = true;
        console.log(`error sources[${source.id}].mappings: ${err.message}`);
      }
    }
    // Every set loaded: whether they would notify a record by their order, or twice (sources/overlap.ts).
    if (!failed) {
      try {
        checkSourceMappings(config, (i) => sets[i]?.mappings);
        for (const { message } of unreachableMappingWarnings(config.sources, (i) => sets[i]?.mappings))
          console.log(`warn  ${message}`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        failed = true;
        console.log(`error ${err.message}`);
      }
    }
  }
  process.exitCode = failed ? 2 : 0;
}
