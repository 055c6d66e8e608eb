// `opencrvs-bridge map --input FILE [--mapping FILE] [--config FILE] [--json]`: a dry run. Maps a FHIR
// Bundle (or one resource, or an array of them), or DHIS2 tracker JSON (a tracked entity, a list response,
// an event) with the dhis2 mappings, and prints the declaration and routing, or why not. `--ref Type/id`
// instead reads the record and its context from a configured source (map-ref.ts).
// Exit 0: mapped or skipped; 1: invalid record; 2: usage, input (a --ref not read) or mapping load error.
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { BridgeConfig, SourceSettings } from '../config/types.js';
import {
  ContextReadError,
  type DryRunResult,
  type LoadMappingsOptions,
  loadMappings,
  MappingLoadError,
  type MappingSet,
  mapInput,
  mappingFile,
  mappingOptionsFromConfig,
  sourceMappingOptions,
} from '../mapping/index.js';
import { errorMessage } from '../observability/inner-errors.js';
import { SourceCallError } from '../sources/shared/source-error.js';
import { goLiveAnswer, goLiveNoteForSources } from './map-go-live.js';
import { mapRef, RefError } from './map-ref.js';
import { buildOrReport, configPath, LOCAL_ONLY, loadConfigOrReport } from './options.js';
import { processLogger } from './runtime.js';

interface MapCommandOptions {
  input?: string;
  ref?: string;
  mapping?: string;
  config?: string;
  source?: string;
  json?: boolean;
}

export function registerMap(program: Command): void {
  program
    .command('map')
    .description(
      'Dry run: map a FHIR Bundle or DHIS2 tracker JSON, or with --ref a record read from a source, to an OpenCRVS declaration and routing (nothing is sent).',
    )
    .option(
      '--input <file>',
      'FHIR Bundle (any type), one resource or an array of them; or a DHIS2 tracked entity, list response or event',
    )
    .option(
      '--ref <Type/id>',
      'instead of --input: read this record (Patient/123; an Encounter maps its patient; DHIS2: TrackedEntity/<uid> or Event/<uid>) and its context live from the source of --config (--source when it has several), with its credentials and timeouts; nothing is sent, no ledger is opened',
    )
    .option(
      '--mapping <file>',
      "one mapping file, or a shipped mapping's name such as birth.fhir (default: the config's sources' mappings; without --config, every mapping in mappings/)",
    )
    .option(
      '--config <file>',
      "configuration: routing, OpenCRVS country and version, the sources' go-live (an event dated before it is answered skipped, as serve records it), and for --ref the sources (default: $BRIDGE_CONFIG)",
    )
    .option(
      '--source <id>',
      "map as this source of the configuration does: its mappings, its timeZone (without it, the sources' zone when they agree, else UTC) and its go-live (without it, the configuration's one source of the mapping's kind; of several, a note names those that would skip the record); with --ref, the source read",
    )
    .option(
      '--json',
      'print one JSON object ({"status":"error",…} for a missing --input, an input it cannot read or recognise, a --ref it cannot read, a mapping that does not load or a configuration error); an unknown option or an option without its value prints nothing on standard output',
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
  if (options.input && options.ref) return usage('give --input FILE or --ref Type/id, not both');
  if (!options.input && !options.ref) return usage('--input FILE (or --ref Type/id with a configuration) is required');
  let input: unknown;
  if (options.input) {
    try {
      input = JSON.parse(readFileSync(options.input, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return usage(`cannot read ${options.input}: ${code ? `file error ${code}` : 'not valid JSON'}`);
    }
  } else if (!configPath(options.config)) {
    return usage('--ref needs a configuration (--config FILE or $BRIDGE_CONFIG): the source to read it from');
  }
  let loadOptions: LoadMappingsOptions = {};
  let config: BridgeConfig | undefined;
  let refSource: SourceSettings | undefined;
  // The source --source names: an --input is answered as that source records it (its go-live).
  let chosen: SourceSettings | undefined;
  if (configPath(options.config)) {
    // Said on standard error as every command says it (exit 2), and as the JSON object with --json. --ref
    // calls the source with its credentials; OpenCRVS is called by neither.
    config = loadConfigOrReport(options.config, jsonError, options.ref ? 'sources' : LOCAL_ONLY);
    if (!config) return;
    if (options.ref && !options.source && config.sources.length !== 1)
      return usage(
        config.sources.length === 0
          ? '--ref: the configuration has no sources to read from'
          : `--ref: say which source to read with --source (${config.sources.map((s) => s.id).join(', ')})`,
      );
    // The mappings the config's sources use (a site's own files included), as serve would map with,
    // and the config's country, version and routing; or those of one source, in its zone.
    if (options.source || options.ref) {
      options.source ??= config.sources[0]?.id;
      const source = config.sources.find((s) => s.id === options.source);
      if (!source)
        return usage(
          `--source ${options.source}: no such source in the configuration (${config.sources.map((s) => s.id).join(', ') || 'none'})`,
        );
      loadOptions = sourceMappingOptions(config.opencrvs, config.routing, source);
      chosen = source;
      if (options.ref) refSource = source;
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
  // Logs (a source's step-downs, retries) go to standard error: standard output is the answer. A bad
  // LOG_LEVEL is a configuration error, as for sync.
  const logger = refSource && buildOrReport(() => processLogger(config, { toStderr: true }), jsonError);
  if (refSource && !logger) return;
  let result: DryRunResult;
  try {
    const set = loadMappings(loadOptions);
    if (options.ref && refSource && logger) result = await mapRef(set, refSource, options.ref, logger);
    else result = inputGoLive(await mapInput(set, input), set, config, chosen);
  } catch (err) {
    if (err instanceof MappingLoadError) return usage(`mapping does not load: ${err.message}`);
    if (err instanceof Error && /neither a FHIR resource|^DHIS2 input:/.test(err.message))
      return usage(`${options.input}: ${err.message}`);
    if (err instanceof RefError) return usage(err.message);
    // The call and its status, not the record's id: what failed to be read is named by its place.
    if (err instanceof ContextReadError)
      return usage(
        `--ref: source ${refSource?.id} could not be read (${err.ofSubject ? 'the record' : `context '${err.item}'`}): ${err.cause instanceof Error ? errorMessage(err.cause) : String(err.cause)}`,
      );
    if (err instanceof SourceCallError)
      return usage(`--ref: source ${refSource?.id} could not be read: ${err.message}`);
    throw err;
  }
  console.log(options.json ? JSON.stringify(jsonView(result)) : report(result));
  process.exitCode = result.status === 'invalid' ? 1 : 0;
}

/**
 * An --input's answer as serve would record it, where the configuration tells which source's go-live holds:
 * the one --source names, or the configuration's one source of the mapping's kind (fhir, dhis2), as `map
 * --ref` answers (map-go-live.ts). Of several, the answer stays the mapping's and a note names those that
 * would skip it. Without a configuration there is no go-live to say anything of.
 */
function inputGoLive(
  result: DryRunResult,
  set: MappingSet,
  config: BridgeConfig | undefined,
  chosen: SourceSettings | undefined,
): DryRunResult {
  const note = (text: string) => console.error(text);
  if (chosen) return goLiveAnswer(result, chosen, note);
  const kind = result.mappingId === undefined ? undefined : set.get(result.mappingId)?.source;
  const sources = config?.sources.filter((s) => s.kind === kind) ?? [];
  const [only] = sources;
  if (sources.length === 1 && only) return goLiveAnswer(result, only, note);
  goLiveNoteForSources(result, sources, note);
  return result;
}

function jsonView(result: DryRunResult): Record<string, unknown> {
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
      return {
        status: 'skipped',
        reason: result.reason,
        mappingId: result.mappingId,
        subjectRef: result.subjectRef,
        ...(result.hint ? { hint: result.hint } : {}),
      };
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

function report(result: DryRunResult): string {
  const lines: string[] = [];
  if (result.status === 'skipped') {
    lines.push(`SKIPPED${result.mappingId ? ` (${result.mappingId}, ${result.subjectRef})` : ''}: ${result.reason}`);
    if (result.hint) lines.push(`  hint: ${result.hint}`);
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
