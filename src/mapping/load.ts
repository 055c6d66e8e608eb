// Loads mapping files (by name from mappings/, or by path) into a MappingSet for one country and version.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_MAPPINGS, mappingFile, packagePaths } from '../config/paths.js';
import type { BridgeConfig, RoutingSettings, SourceSettings, WriteBackSettings } from '../config/types.js';
import { type CompiledMapping, compileMapping } from './compile.js';
import { ownWritesOf } from './fingerprint.js';
import { MappingSet } from './set.js';
import { MappingLoadError } from './yaml-source.js';

export interface LoadMappingsOptions {
  /** Mapping names looked up in `dir`, e.g. ['birth.fhir', 'death.fhir'], or paths to mapping files. */
  names?: string[];
  /** Mapping files by path. Without names and files, every *.yaml in `dir` is loaded. */
  files?: string[];
  /** Default: the package's mappings/ folder. */
  dir?: string;
  /** Default 'farajaland'. */
  country?: string;
  /** Default '2.0'. */
  version?: '2.0' | '1.9';
  /** The config's routing table (routes and default office). */
  routing?: RoutingSettings;
  /** Evaluate the common FHIRPath subset directly (default true); false = fhirpath.js for everything. */
  fastPath?: boolean;
  /** IANA zone the source's UTC dateTimes are read in (SourceSettings.timeZone); none: as written. */
  timeZone?: string;
  /** The source that names these mappings: one written for the other kind of source is refused. */
  forSource?: { id: string; kind: 'fhir' | 'dhis2' };
  /** The source's write-back: what it writes to the records is left out of their fingerprints. */
  writeBack?: SourceSettings['writeBack'];
  /**
   * The write-backs of the other sources of the same server and kind (sources/overlap.ts
   * writeBacksOnServer): their tracking ids land on records this source reads
   * too, left out as well.
   */
  sameServerWriteBacks?: readonly WriteBackSettings[];
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MappingLoadError(
      file,
      '',
      code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? 'error'})`,
    );
  }
}

/** Compiles the mappings and runs the static checks; throws MappingLoadError (file + key path + line). */
export function loadMappings(options: LoadMappingsOptions = {}): MappingSet {
  const dir = options.dir ?? packagePaths.mappings;
  const files: string[] = [];
  for (const name of options.names ?? []) files.push(mappingFile(name, dir));
  for (const file of options.files ?? []) files.push(resolve(file));
  if (files.length === 0) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      throw new MappingLoadError(dir, '', 'mappings folder not found');
    }
    for (const entry of entries.filter((e) => /\.ya?ml$/.test(e)).sort()) files.push(join(dir, entry));
    if (files.length === 0) throw new MappingLoadError(dir, '', 'no mapping files (*.yaml) in this folder');
  }
  const mappings: CompiledMapping[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    const mapping = compileMapping(file, readText(file), {
      country: options.country ?? 'farajaland',
      version: options.version ?? '2.0',
      fastPath: options.fastPath,
      timeZone: options.timeZone,
    });
    const owner = options.forSource;
    if (owner && mapping.source !== owner.kind) {
      throw new MappingLoadError(
        file,
        'source',
        `a mapping for ${mapping.source} sources, named by source ${owner.id} (kind ${owner.kind}): ` +
          `name ${DEFAULT_MAPPINGS[owner.kind].join(', ')} or your own copies of them`,
      );
    }
    const other = seen.get(mapping.id);
    if (other) throw new MappingLoadError(file, 'id', `mapping id ${mapping.id} is already used by ${other}`);
    seen.set(mapping.id, file);
    mappings.push(mapping);
  }
  // Stable sort: equal priorities keep the order they were named in.
  mappings.sort((a, b) => b.priority - a.priority);
  // Only for a source's set: its kind says where its write-back writes.
  const kind = options.forSource?.kind;
  const own = kind
    ? ownWritesOf(
        { kind, ...(options.writeBack ? { writeBack: options.writeBack } : {}) },
        options.sameServerWriteBacks,
      )
    : undefined;
  return new MappingSet(mappings, options.routing, own);
}

/**
 * Load options for one source's mapping set, as `serve` and `sync` load it (and `validate` and `doctor`
 * check it): the mappings it names, in its zone, refused when written for the other kind of source.
 */
export function sourceMappingOptions(
  opencrvs: Pick<BridgeConfig['opencrvs'], 'country' | 'version'>,
  routing: RoutingSettings,
  source: Pick<SourceSettings, 'id' | 'kind' | 'mappings' | 'timeZone' | 'writeBack'>,
  /** The other sources' write-backs on the same server (LoadMappingsOptions.sameServerWriteBacks). */
  sameServerWriteBacks?: readonly WriteBackSettings[],
): LoadMappingsOptions {
  return {
    names: source.mappings,
    timeZone: source.timeZone,
    country: opencrvs.country,
    version: opencrvs.version,
    routing,
    forSource: { id: source.id, kind: source.kind },
    ...(source.writeBack ? { writeBack: source.writeBack } : {}),
    ...(sameServerWriteBacks?.length ? { sameServerWriteBacks } : {}),
  };
}

/** Load options for a configuration: its country, version and routing, and the mappings its sources name. */
export function mappingOptionsFromConfig(config: BridgeConfig): LoadMappingsOptions {
  const names = [...new Set(config.sources.flatMap((s) => s.mappings))];
  // A dry run has no source: the sources' zone when they agree on one.
  const zones = [...new Set(config.sources.map((s) => s.timeZone))];
  return {
    ...(zones.length === 1 && zones[0] ? { timeZone: zones[0] } : {}),
    names: names.length ? names : undefined,
    country: config.opencrvs.country,
    version: config.opencrvs.version,
    routing: config.routing,
  };
}
