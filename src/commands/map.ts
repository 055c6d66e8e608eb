// `opencrvs-bridge map --input FILE [--mapping FILE] [--config FILE] [--json]`: a dry run. Maps a FHIR
// Bundle (or one resource, or an array of them), or DHIS2 tracker JSON (a tracked entity, a list response,
// an event) with the dhis2 mappings, and prints the declaration and routing, or why not.
// Exit 0: mapped or skipped; 1: invalid record; 2: usage, input or mapping load error.
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  type LoadMappingsOptions,
  loadMappings,
  MappingLoadError,
  type MapResult,
  mapInput,
  mappingFile,
  mappingOptionsFromConfig,
  sourceMappingOptions,
} from '../mapping/index.js';
import { configPath, LOCAL_ONLY, loadConfigOrReport } from './options.js';

interface MapCommandOptions {
  input?: string;
  mapping?: string;
  config?: string;
  source?: string;
  json?: boolean;
}

export function registerMap(program: Command): void {
  program
    .command('map')
    .description(
      'Dry run: map a FHIR Bundle or DHIS2 tracker JSON to an OpenCRVS declaration and routing (nothing is sent).',
    )
    .option(
      '--input <file>',
      'FHIR Bundle (any type), one resource or an array of them; or a DHIS2 tracked entity, list response or event',
    )
    .option(
      '--mapping <file>',
      "one mapping file, or a shipped mapping's name such as birth.fhir (default: the config's sources' mappings; without --config, every mapping in mappings/)",
    )
    .option('--config <file>', 'configuration: routing, OpenCRVS country and version (default: $BRIDGE_CONFIG)')
    .option(
      '--source <id>',
      "map as this source of the configuration does: its mappings and its timeZone (without it, the sources' zone when they agree, else UTC)",
    )
    .option(
      '--json',
      'print one JSON object ({"status":"error",…} for a missing --input, an input it cannot read or recognise, a mapping that does not load or a configuration error); an unknown option or an option without its value prints nothing on standard output',
    )
    .action((options: MapCommandOptions) => runMap(options));
}

async function runMap(options: MapCommandOptions): Promise<void> {
  // With --json, a script reads standard output: the problem comes as the one JSON object too.
  const jsonError = (message: string): void => {
    if (options.json) console.log(JSON.stringify({ status: 'error', error: message }));
  };
  const usage = (message: string): void => {
    console.error(`opencrvs-bridge map: ${message}`);
    jsonError(message);
    process.exitCode = 2;
  };
  if (!options.input) return usage('--input FILE is required');
  let input: unknown;
  try {
    input = JSON.parse(readFileSync(options.input, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return usage(`cannot read ${options.input}: ${code ? `file error ${code}` : 'not valid JSON'}`);
  }
  let loadOptions: LoadMappingsOptions = {};
  if (configPath(options.config)) {
    // Said on standard error as every command says it (exit 2), and as the JSON object with --json.
    const config = loadConfigOrReport(options.config, jsonError, LOCAL_ONLY);
    if (!config) return;
    // The mappings the config's sources use (a site's own files included), as serve would map with,
    // and the config's country, version and routing; or those of one source, in its zone.
    if (options.source) {
      const source = config.sources.find((s) => s.id === options.source);
      if (!source)
        return usage(
          `--source ${options.source}: no such source in the configuration (${config.sources.map((s) => s.id).join(', ') || 'none'})`,
        );
      loadOptions = sourceMappingOptions(config.opencrvs, config.routing, source);
    } else {
      loadOptions = mappingOptionsFromConfig(config);
      const zones = [...new Set(config.sources.map((s) => s.timeZone ?? 'UTC'))];
      // Dates in UTC date-times (a birth at 23:30 local time) would come out a day off from what a source sends.
      if (zones.length > 1)
        console.error(
          `Note: the sources read dates in different time zones (${zones.join(', ')}); this dry run reads them in UTC. Pass --source ID to map as one source does.`,
        );
    }
  } else if (options.source) {
    return usage('--source needs a configuration (--config FILE or $BRIDGE_CONFIG)');
  }
  // One file, instead of the config's (or, without a config, every shipped) mappings.
  // A file, or a shipped mapping's name (`birth.fhir`), as sources[].mappings take them.
  if (options.mapping) {
    const file = existsSync(options.mapping) ? options.mapping : mappingFile(options.mapping, loadOptions.dir);
    loadOptions = { ...loadOptions, names: undefined, files: [file] };
  }
  let result: MapResult;
  try {
    result = await mapInput(loadMappings(loadOptions), input);
  } catch (err) {
    if (err instanceof MappingLoadError) return usage(`mapping does not load: ${err.message}`);
    if (err instanceof Error && /neither a FHIR resource|^DHIS2 input:/.test(err.message))
      return usage(`${options.input}: ${err.message}`);
    throw err;
  }
  console.log(options.json ? JSON.stringify(jsonView(result)) : report(result));
  process.exitCode = result.status === 'invalid' ? 1 : 0;
}

function jsonView(result: MapResult): Record<string, unknown> {
  switch (result.status) {
    case 'mapped':
      return {
        status: 'mapped',
        eventType: result.eventType,
        mappingId: result.mappingId,
        subjectRef: result.subjectRef,
        evidence: result.evidence,
        declaration: result.declaration,
        routing: result.routing,
        warnings: result.warnings,
      };
    case 'skipped':
      return { status: 'skipped', reason: result.reason, mappingId: result.mappingId, subjectRef: result.subjectRef };
    case 'invalid':
      return {
        status: 'invalid',
        eventType: result.eventType,
        mappingId: result.mappingId,
        subjectRef: result.subjectRef,
        errors: result.errors,
      };
  }
}

function report(result: MapResult): string {
  const lines: string[] = [];
  if (result.status === 'skipped') {
    lines.push(`SKIPPED${result.mappingId ? ` (${result.mappingId}, ${result.subjectRef})` : ''}: ${result.reason}`);
  } else if (result.status === 'invalid') {
    lines.push(`INVALID ${result.eventType} (${result.mappingId}, ${result.subjectRef}): nothing would be sent`);
    for (const e of result.errors) lines.push(`  ${e.field}: ${e.message}`);
  } else {
    lines.push(`MAPPED ${result.eventType} (${result.mappingId}, ${result.subjectRef})`);
    lines.push(`  evidence: ${result.evidence ?? '-'}`);
    lines.push(`  office:   ${result.routing.office ?? '-'}`);
    lines.push(`  facility: ${result.routing.facility ?? '-'}`);
    lines.push(`  routing:  ${result.routing.via}`);
    lines.push('  declaration:');
    for (const [id, value] of Object.entries(result.declaration)) lines.push(`    ${id} = ${JSON.stringify(value)}`);
    if (result.warnings.length) {
      lines.push('  warnings:');
      for (const w of result.warnings) lines.push(`    - ${w}`);
    }
  }
  return lines.join('\n');
}
