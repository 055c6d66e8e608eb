// Configurations that would notify one birth or death twice, or by the order of a list. Refused where a
// source's mappings are loaded (serve, sync, replay, validate, doctor), since the event types are the
// mappings': the configuration file alone does not tell them.
//
// - One source, two mappings of one event type: its ledger row is keyed (source, event type, subject), so
//   the record is one event, and the mapping evaluated last decides it: a birth only the first matches
//   was recorded "no longer notifiable" by the second and never sent.
// - Two sources reading the same records (one FHIR base URL; one DHIS2 programme over the same org units)
//   with mappings of one event type: each derives its own transaction ids from its own id, so OpenCRVS
//   registers every record twice. Two sources on one server that split the event types between them
//   (births from one, deaths from the other) are fine.
// - Two DHIS2 sources of one server polling different programmes whose mappings can match one event type:
//   a tracked entity is one record in every programme it is enrolled in, and its ledger row and transaction
//   ids are keyed by it (TrackedEntity/<uid>), so a child enrolled in both is sent by each. Whatever their
//   org units: each programme has its own owner org unit for it. Not when both are filtered to different
//   tracked entity types (`dhis2.trackedEntityType`): a tracked entity has one type.
// - A DHIS2 source none of whose mappings tests the programme it polls: it would poll and notify nothing
//   (dhis2/mapping-codes.ts; when only some cannot, that is a warning).
import { ConfigError } from '../config/errors.js';
import type { BridgeConfig, SourceSettings, WriteBackSettings } from '../config/types.js';
import { type CodedMapping, unreachableMappings } from './dhis2/mapping-codes.js';
import { dhis2SettingsOf } from './dhis2/settings.js';

/** What the check needs of a loaded mapping. */
export type MappingView = CodedMapping;

/**
 * Throws ConfigError (with the key paths) for the first problem found. `mappingsOf(i)` gives the loaded
 * mappings of `config.sources[i]`, or undefined when they did not load (that source is left out).
 */
export function checkSourceMappings(
  config: Pick<BridgeConfig, 'sources'>,
  mappingsOf: (index: number) => readonly MappingView[] | undefined,
): void {
  const types = config.sources.map((_, i) => oneMappingPerEventType(mappingsOf(i), i));
  const matching = config.sources.map((source, i) => eventTypesMatching(source, mappingsOf(i)));
  for (const [j, later] of config.sources.entries()) {
    for (const [i, earlier] of config.sources.slice(0, j).entries()) {
      const keys = sameRecords(earlier, later);
      if (!keys) continue;
      // Across programmes only the mappings that can match each programme: a source given both shipped
      // mappings notifies only its own programme's (the other is warned about, mapping-codes.ts).
      const [ti, tj] = keys.programmes ? [matching[i], matching[j]] : [types[i], types[j]];
      const shared = [...(ti ?? [])].filter((type) => tj?.has(type)).sort();
      if (shared.length === 0) continue;
      const list = shared.join(' and ');
      if (keys.programmes) {
        throw new ConfigError(
          `sources[${j}].${keys.b}`,
          `reads the same DHIS2 server as sources[${i}] ("${earlier.id}", sources[${i}].${keys.a}) and both map ` +
            `${list} events, of the tracked entities of sources[${i}].dhis2.program ${keys.programmes[0]} and ` +
            `sources[${j}].dhis2.program ${keys.programmes[1]}: a tracked entity is one record in every programme it ` +
            'is enrolled in, so one enrolled in both would be sent by each source under transaction ids of its ' +
            `own, and OpenCRVS would register it twice. Map ${list} in one of them only (sources[${i}].mappings, ` +
            `sources[${j}].mappings)`,
        );
      }
      const what = later.kind === 'fhir' ? 'FHIR server' : `DHIS2 programme ${dhis2SettingsOf(later).program}`;
      // One programme is usually split by district: what to do then comes first (docs/dhis2.md).
      const districts =
        later.kind === 'dhis2'
          ? `Give them disjoint org units (sources[${i}].dhis2.orgUnits, sources[${j}].dhis2.orgUnits: a server ` +
            'split by district, no unit under another with orgUnitMode DESCENDANTS), map '
          : 'Map ';
      throw new ConfigError(
        `sources[${j}].${keys.b}`,
        `reads the same ${what} as sources[${i}] ("${earlier.id}", sources[${i}].${keys.a}) and both map ${list} ` +
          'events: each source sends them under transaction ids of its own, so OpenCRVS would register every one ' +
          `twice. ${districts}${list} in one of them only (sources[${i}].mappings, sources[${j}].mappings), or make ` +
          'them one source',
      );
    }
  }
}

/** The event types of one source's mappings; throws when two mappings share one. */
function oneMappingPerEventType(mappings: readonly MappingView[] | undefined, index: number): Set<string> {
  const byType = new Map<string, MappingView>();
  for (const mapping of mappings ?? []) {
    const other = byType.get(mapping.eventType);
    if (other) {
      throw new ConfigError(
        `sources[${index}].mappings`,
        `names two ${mapping.eventType} mappings, ${other.id} (${other.file}) and ${mapping.id} (${mapping.file}): ` +
          `a record is one ${mapping.eventType} event of the source, so the mapping evaluated last would decide ` +
          'it, and a record only the other one matches would never be sent. Edit one mapping (a copy of the ' +
          'shipped one, with what you need added) instead of listing a second',
      );
    }
    byType.set(mapping.eventType, mapping);
  }
  return new Set(byType.keys());
}

/** The event types of the mappings that can match the programme a DHIS2 source polls (all, for FHIR). */
function eventTypesMatching(source: SourceSettings, mappings: readonly MappingView[] | undefined): Set<string> {
  const cannot = new Set(unreachableMappings(source, mappings ?? []).map((u) => u.mapping));
  return new Set((mappings ?? []).filter((mapping) => !cannot.has(mapping)).map((mapping) => mapping.eventType));
}

/**
 * For each DHIS2 source, the other DHIS2 sources of the same server (baseUrl) and programme: a national
 * server split by district into sources with disjoint `orgUnits` (allowed above). Their records are the same
 * tracked entities, and one moves from one source's org units to another's by an ordinary tracker update (a
 * transfer): the pipeline records what a source reads of a record another of these already holds on that
 * source's row (SourcePipeline, sharesRecordsWith).
 */
export function sourcesSharingRecords(sources: readonly SourceSettings[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const source of sources) {
    if (source.kind !== 'dhis2') continue;
    const program = dhis2SettingsOf(source).program;
    const others = sources.filter(
      (other) =>
        other !== source &&
        other.kind === 'dhis2' &&
        serverOf(other) === serverOf(source) &&
        dhis2SettingsOf(other).program === program,
    );
    if (others.length > 0)
      out.set(
        source.id,
        others.map((other) => other.id),
      );
  }
  return out;
}

/**
 * For each source, the write-backs of the other sources of its kind on the same server, whatever they
 * notify: their tracking ids land on records this source reads (a mother read as a birth's context is the
 * death another source notifies; for DHIS2 a tracked entity is one record across programmes, its
 * attributes, enrollments and events coming with it). The fingerprint leaves them out
 * (mapping/fingerprint.ts ownWritesOf): nothing but the bridge writes those data elements, attributes or
 * identifier systems. One server as the overlap check takes it: for DHIS2 one baseUrl, for FHIR one
 * source's baseUrl among the other's addresses (sameFhirServer).
 */
export function writeBacksOnServer(sources: readonly SourceSettings[]): Map<string, WriteBackSettings[]> {
  const sameServer = (a: SourceSettings, b: SourceSettings) =>
    a.kind === 'fhir' ? sameFhirServer(a, b) : serverOf(a) === serverOf(b);
  const out = new Map<string, WriteBackSettings[]>();
  for (const source of sources) {
    const others = sources.flatMap((other) =>
      other !== source && other.kind === source.kind && other.writeBack && sameServer(source, other)
        ? [other.writeBack]
        : [],
    );
    if (others.length > 0) out.set(source.id, others);
  }
  return out;
}

/** The key of each source (under `sources[i].`) whose address showed them one server. */
interface SameAddress {
  a: string;
  b: string;
  /** Two DHIS2 sources of one server polling different programmes: the programmes, a's then b's. */
  programmes?: readonly [string, string];
}

const BASE_URLS: SameAddress = { a: 'baseUrl', b: 'baseUrl' };

/**
 * Whether two sources read the same records, and by which of their keys. Two URLs of one server (a host name
 * and its address) are not seen, unless a FHIR source names the other's in its alsoKnownAs.
 */
function sameRecords(a: SourceSettings, b: SourceSettings): SameAddress | undefined {
  if (a.kind !== b.kind) return undefined;
  if (a.kind === 'fhir') return sameFhirServer(a, b);
  if (serverOf(a) !== serverOf(b)) return undefined;
  const [da, db] = [dhis2SettingsOf(a), dhis2SettingsOf(b)];
  // A tracked entity has one type: two sources filtered to different types never read the same one, whatever
  // their programmes (the poller keeps only its type's: DHIS2 does not filter a programme's list by type). A
  // source without the filter reads every type.
  if (da.trackedEntityType && db.trackedEntityType && da.trackedEntityType !== db.trackedEntityType) return undefined;
  // A tracked entity is one record across programmes: the same child may be enrolled in both. Their org
  // units tell nothing then, as each programme has an owner org unit of its own for it.
  if (da.program !== db.program) return { ...BASE_URLS, programmes: [da.program, db.program] };
  // Org units named on both sides and none in common: a national DHIS2 split by district, one source each.
  // (With orgUnitMode DESCENDANTS one named unit may lie under another: that overlap is not seen here.)
  if (da.orgUnits?.length && db.orgUnits?.length)
    return da.orgUnits.some((unit) => db.orgUnits?.includes(unit)) ? BASE_URLS : undefined;
  return BASE_URLS;
}

/**
 * Two FHIR sources of one server, by the keys that show it: one source's baseUrl (the server the bridge
 * calls) against the other's addresses, either way round; never an alias against an alias: two hospitals'
 * EMRs may both write under a docker-compose default (`http://openmrs:8080/…`), which says nothing of whose
 * records they hold.
 */
function sameFhirServer(a: SourceSettings, b: SourceSettings): SameAddress | undefined {
  const [as, bs] = [fhirServersOf(a), fhirServersOf(b)];
  const y = bs.indexOf(as[0] ?? '');
  if (y >= 0) return { a: addressKey(0), b: addressKey(y) };
  const x = as.indexOf(bs[0] ?? '');
  if (x >= 0) return { a: addressKey(x), b: addressKey(0) };
  return undefined;
}

/** The key of the n-th address fhirServersOf lists: baseUrl, then each alsoKnownAs entry. */
function addressKey(n: number): string {
  return n === 0 ? 'baseUrl' : `alsoKnownAs[${n - 1}]`;
}

/**
 * The base URL as the server sees it: host case, a default port and trailing slashes make no difference,
 * nor, for DHIS2 (whose baseUrl may name the server root or its /api), a closing /api.
 */
export function serverOf(source: SourceSettings, baseUrl = source.baseUrl): string {
  const url = new URL(baseUrl);
  let path = url.pathname.replace(/\/+$/, '');
  if (source.kind === 'dhis2') path = path.replace(/\/api$/, '');
  return `${url.protocol}//${url.host}${path}${url.search}`;
}

/** A FHIR source's server under each of its addresses: baseUrl and alsoKnownAs (the EMR's other names). */
function fhirServersOf(source: SourceSettings): string[] {
  return [source.baseUrl, ...(source.alsoKnownAs ?? [])].map((base) => serverOf(source, base));
}
