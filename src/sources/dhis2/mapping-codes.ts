// Which DHIS2 uids a mapping can match, read from its expressions: `program.coded('program')` tests an
// enrollment's programme against the `program` code set, `programStage.coded('birthStage')` an event's stage.
// A DHIS2 source polls one programme (`sources[].dhis2.program`) and DHIS2 then lists only the enrollments
// in it, so a mapping whose programme set does not name that programme finds no enrollment, no event, and
// triggers on nothing: nothing is notified and no error is ever raised. Checked where the mappings are
// loaded (sources/overlap.ts) and, for the stages, against the live metadata by `doctor`.
import { resolve } from 'node:path';
import { isMappingPath, shippedMappingFile } from '../../config/paths.js';
import type { SourceSettings } from '../../config/types.js';
import { dhis2SettingsOf } from './settings.js';

/** What these checks need of a loaded mapping. */
export interface CodedMapping {
  id: string;
  file: string;
  eventType: string;
  expressions?: ReadonlyArray<{ text: string }>;
  codes?: Readonly<Record<string, readonly string[]>>;
}

/** A tracker key compared with a code set, and the code sets it is compared with. */
export type CodedKey = 'program' | 'programStage' | 'attribute' | 'dataElement';

const CODED = /\b(program|programStage|attribute|dataElement)\s*\.\s*coded\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Code set names by the tracker key the mapping's expressions test against them. */
export function codedSets(mapping: CodedMapping): Map<CodedKey, string[]> {
  const out = new Map<CodedKey, string[]>();
  for (const { text } of mapping.expressions ?? []) {
    for (const [, key, set] of text.matchAll(CODED)) {
      const names = out.get(key as CodedKey) ?? [];
      if (set && !names.includes(set)) names.push(set);
      out.set(key as CodedKey, names);
    }
  }
  return out;
}

/** The uids of the code sets a mapping tests `key` against; undefined when it tests none. */
export function codedUids(mapping: CodedMapping, key: CodedKey): { sets: string[]; uids: string[] } | undefined {
  const sets = codedSets(mapping).get(key);
  if (!sets?.length) return undefined;
  return { sets, uids: [...new Set(sets.flatMap((set) => mapping.codes?.[set] ?? []))] };
}

/** A mapping of a DHIS2 source that cannot match the programme the source polls. */
export interface UnreachableMapping {
  /** Its index in `sources[i].mappings`. */
  index: number;
  mapping: CodedMapping;
  /** The code sets it tests the programme against (`program`), and their uids. */
  sets: string[];
  uids: string[];
}

/**
 * The mappings of a DHIS2 source whose programme code sets do not name the programme it polls. A mapping
 * that tests no programme (`program.coded(…)` nowhere) is not judged. Empty for a FHIR source.
 */
export function unreachableMappings(
  source: Pick<SourceSettings, 'kind' | 'dhis2' | 'mappings'>,
  mappings: readonly CodedMapping[],
): UnreachableMapping[] {
  if (source.kind !== 'dhis2') return [];
  const { program } = dhis2SettingsOf(source as SourceSettings);
  // Loaded mappings are in priority order, not the order the configuration names them in.
  const files = (source.mappings ?? []).map((entry) =>
    isMappingPath(entry) ? resolve(entry) : shippedMappingFile(entry),
  );
  const out: UnreachableMapping[] = [];
  for (const [loaded, mapping] of mappings.entries()) {
    const tested = codedUids(mapping, 'program');
    const named = files.indexOf(mapping.file);
    if (tested && !tested.uids.includes(program)) out.push({ index: named >= 0 ? named : loaded, mapping, ...tested });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** `sources[0].mappings[1] (death.dhis2) tests codes.program [SbxDthProg1]` */
export function describeUnreachable(sourceIndex: number, unreachable: UnreachableMapping): string {
  const { index, mapping, sets, uids } = unreachable;
  const written = sets.map((set) => `codes.${set}`).join(', ');
  return `sources[${sourceIndex}].mappings[${index}] (${mapping.id}) tests ${written} [${uids.join(', ')}]`;
}

/**
 * Warnings for the DHIS2 sources some of whose mappings can never match the programme they poll (when none
 * of them can, sources/overlap.ts refuses the configuration). Said at start (serve, sync, replay), by
 * `validate` and by `doctor`, the same words each time.
 */
export function unreachableMappingWarnings(
  sources: ReadonlyArray<Pick<SourceSettings, 'id' | 'kind' | 'dhis2' | 'mappings'>>,
  mappingsOf: (index: number) => readonly CodedMapping[] | undefined,
): Array<{ sourceId: string; message: string }> {
  const out: Array<{ sourceId: string; message: string }> = [];
  for (const [i, source] of sources.entries()) {
    const mappings = mappingsOf(i) ?? [];
    const unreachable = unreachableMappings(source, mappings);
    if (unreachable.length === 0 || unreachable.length === mappings.length) continue;
    const { program } = dhis2SettingsOf(source as SourceSettings);
    for (const u of unreachable) {
      out.push({
        sourceId: source.id,
        message:
          `${describeUnreachable(i, u)}, not sources[${i}].dhis2.program ${program}: DHIS2 lists only the ` +
          `enrollments in the programme polled, so this mapping never notifies a ${u.mapping.eventType}. Remove it ` +
          `from sources[${i}].mappings, or give ${u.mapping.eventType}s a source of their own that polls their programme`,
      });
    }
  }
  return out;
}
