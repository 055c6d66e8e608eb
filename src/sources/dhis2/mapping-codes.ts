// Which DHIS2 uids a mapping can match, read from its expressions: `program.coded('program')` on the
// subject's enrollments tests their programme against the `program` code set, `programStage.coded(…)` on
// their events a stage (mapping/coded-tests.ts follows each test back to what it is applied to; the mother's
// enrollments are not the subject's). The sets are compared as `coded()` compares them when the mapping runs.
// A DHIS2 source polls one programme (`sources[].dhis2.program`) and DHIS2 then lists only the enrollments
// in it, so a mapping whose programme set does not name that programme finds no enrollment, no event, and
// triggers on nothing: nothing is notified and no error is ever raised. Checked where the mappings are
// loaded (sources/overlap.ts) and, for the stages, against the live metadata by `doctor`, which also checks
// the attributes and data elements a mapping reads of the subject (namedUids) against the programme's.

import { mappingFile } from '../../config/paths.js';
import type { SourceSettings } from '../../config/types.js';
import { type CodedTestsInput, codedTests, triggerSets } from '../../mapping/coded-tests.js';
import { buildCodeSet, itemIsCoded } from '../../mapping/fhirpath/functions.js';
import { dhis2SettingsOf } from './settings.js';

/** What these checks need of a loaded mapping. */
export interface CodedMapping extends CodedTestsInput {
  id: string;
  file: string;
  eventType: string;
  codes?: Readonly<Record<string, readonly string[]>>;
}

/** What a tracker uid of the subject is compared with. */
export type CodedKey = 'program' | 'programStage';

/** The subject's own enrollment's programme, and its events' stage, in the tracker JSON. */
const SUBJECT_PATHS: Record<CodedKey, string> = {
  program: 'enrollments.program',
  programStage: 'enrollments.events.programStage',
};

/** The code sets a mapping tests against the subject's own `key`, as written, and what they match. */
export interface TestedCodes {
  sets: string[];
  /** The sets' entries as written, for the messages. */
  uids: string[];
  /** Whether a uid is in one of the sets, as `coded()` decides it when the mapping runs. */
  matches(uid: string): boolean;
}

/**
 * The code sets a mapping tests the subject's own enrollment programme (or event stage) against before it can
 * trigger; undefined when it can trigger without such a test. Tests on other items (the mother's
 * enrollments) are not the subject's, and a test in an `unless` rule or a field does not stop it triggering.
 */
export function codedUids(mapping: CodedMapping, key: CodedKey): TestedCodes | undefined {
  const sets = triggerSets(mapping, SUBJECT_PATHS[key]);
  if (!sets) return undefined;
  const entries = sets.map((set) => (mapping.codes?.[set] ?? []).map(String));
  // The mapping module's own code set: a `system|uid` entry matches a plain uid as it does at run time.
  const codeSets = entries.map((list) => buildCodeSet(list));
  return {
    sets,
    uids: [...new Set(entries.flat())],
    matches: (uid) => codeSets.some((set) => itemIsCoded(uid, set)),
  };
}

/**
 * Where a mapping reads the subject's own attribute values (at the top, or under its enrollments) and its own
 * events' data values, in the tracker JSON. Another person's (the mother's, read outside the programme
 * polled) are not the programme's to judge.
 */
const NAMED_PATHS = {
  attribute: new Set(['attributes.attribute', 'enrollments.attributes.attribute']),
  dataElement: new Set(['enrollments.events.dataValues.dataElement']),
  /** The type of the subject's relationships (the mother's, `codes.motherRelationship`): metadata, not the programme's. */
  relationshipType: new Set(['relationships.relationshipType']),
} as const;

/** What a mapping names a value of the subject by: a tracked entity attribute or a data element, or a relationship by its type. */
export type NamedKind = keyof typeof NAMED_PATHS;

/** A code set a mapping reads the subject's own values by, and its entries as written. */
export interface NamedSet {
  set: string;
  entries: string[];
}

/**
 * The code sets a mapping tests the subject's own attributes (or its events' data elements) against,
 * anywhere in it (a field reads by them as much as the trigger does): `attribute.coded('firstName')` on
 * `%subject.attributes`.
 */
export function namedUids(mapping: CodedMapping, kind: NamedKind): NamedSet[] {
  const paths = NAMED_PATHS[kind];
  const sets = codedTests(mapping).flatMap((test) => (test.path && paths.has(test.path.join('.')) ? [test.set] : []));
  return [...new Set(sets)].map((set) => ({ set, entries: (mapping.codes?.[set] ?? []).map(String) }));
}

/** A mapping of a DHIS2 source that cannot match the programme the source polls. */
export interface UnreachableMapping {
  /** Its index in `sources[i].mappings`. */
  index: number;
  mapping: CodedMapping;
  /** The code sets it tests the programme against (`program`), and their entries. */
  sets: string[];
  uids: string[];
}

/**
 * The mappings of a DHIS2 source whose programme code sets do not name the programme it polls. A mapping
 * that tests no programme of the subject's own enrollments is not judged. Empty for a FHIR source.
 */
export function unreachableMappings(
  source: Pick<SourceSettings, 'kind' | 'dhis2' | 'mappings'>,
  mappings: readonly CodedMapping[],
): UnreachableMapping[] {
  if (source.kind !== 'dhis2') return [];
  const { program } = dhis2SettingsOf(source as SourceSettings);
  // Loaded mappings are in priority order, not the order the configuration names them in.
  const files = (source.mappings ?? []).map((entry) => mappingFile(entry));
  const out: UnreachableMapping[] = [];
  for (const [loaded, mapping] of mappings.entries()) {
    const tested = codedUids(mapping, 'program');
    const named = files.indexOf(mapping.file);
    if (tested && !tested.matches(program))
      out.push({ index: named >= 0 ? named : loaded, mapping, sets: tested.sets, uids: tested.uids });
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
 * Warnings for the DHIS2 sources some or all of whose mappings can never match the programme they poll.
 * Said at start (serve, sync, replay), by `validate` and by `doctor`, the same words each time. Warnings,
 * not a refusal even when none can match: the judgement reads the trigger's expressions, and FHIRPath can
 * say "any programme but this one" in more ways (`not()`, `or`, a comparison, `iif`) than a reading of the
 * text can follow; refused, a configuration that works would stop at start.
 */
export function unreachableMappingWarnings(
  sources: ReadonlyArray<Pick<SourceSettings, 'id' | 'kind' | 'dhis2' | 'mappings'>>,
  mappingsOf: (index: number) => readonly CodedMapping[] | undefined,
): Array<{ sourceId: string; message: string }> {
  const out: Array<{ sourceId: string; message: string }> = [];
  for (const [i, source] of sources.entries()) {
    const mappings = mappingsOf(i) ?? [];
    const unreachable = unreachableMappings(source, mappings);
    if (unreachable.length === 0) continue;
    const { program } = dhis2SettingsOf(source as SourceSettings);
    if (unreachable.length === mappings.length) {
      out.push({
        sourceId: source.id,
        message:
          `no mapping of source "${source.id}" seems able to match sources[${i}].dhis2.program ${program}: ` +
          `${unreachable.map((u) => describeUnreachable(i, u)).join('; ')}. DHIS2 lists only the enrollments in ` +
          `the programme polled, so the source would poll and notify nothing. Set sources[${i}].dhis2.program to ` +
          `the programme these mappings read, or name mappings that read ${program} (a copy of the shipped one ` +
          "with its codes.program set to it; docs/dhis2.md, 'Put the uids in the mappings')",
      });
      continue;
    }
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
