// `map --ref Type/id`: the dry run on one record read live from a configured source, with the context its
// mappings read, through the source's own client and fetcher (its auth, timeouts and the same bounded
// reads as a poll). Nothing is sent, and no ledger is opened.
import type { SourceSettings } from '../config/types.js';
import {
  type Candidate,
  type DryRunResult,
  type MappingSet,
  type MapResult,
  mapCandidates,
  type Resource,
  type ResourceFetcher,
  trackedEntityResource,
} from '../mapping/index.js';
import type { Logger } from '../observability/logger.js';
import { isDhis2Uid } from '../sources/dhis2/client.js';
import { Dhis2Fetcher } from '../sources/dhis2/fetcher.js';
import { Dhis2Client, dhis2SettingsOf, isOfTrackedEntityType, trackedEntityFilter } from '../sources/dhis2/index.js';
import { CachingFetcher } from '../sources/fhir/fetcher.js';
import { FhirSourceClient } from '../sources/fhir/fhir-client.js';
import { isFhirId, isResourceType } from '../sources/fhir/notification.js';
import { goLiveAnswer } from './map-go-live.js';

/** What `--ref` names that the command cannot map: said as a usage or input error (exit 2). */
export class RefError extends Error {}

/** The `--ref` forms a DHIS2 source takes. */
const DHIS2_TYPES = ['TrackedEntity', 'Event'];

/**
 * Reads `ref` from `source` with its context and maps it as the source's pipeline would (the mappings of
 * `set`, no OpenCRVS lookups: routing as the configuration gives it, as `map --input`). A ref that is no
 * record, or one the source does not have, is a RefError; a source that fails to answer throws its own
 * error (its message names the call and status, never the record). `note`: what the dry run says beside
 * its answer (standard error), such as a record outside what the source polls.
 */
export async function mapRef(
  set: MappingSet,
  source: SourceSettings,
  ref: string,
  logger: Logger,
  note: (text: string) => void = (text) => console.error(text),
): Promise<DryRunResult> {
  const slash = ref.indexOf('/');
  const type = ref.slice(0, slash);
  const id = ref.slice(slash + 1);
  if (slash <= 0 || id === '' || id.includes('/'))
    throw new RefError(
      `--ref takes a record as Type/id (Patient/123${source.kind === 'dhis2' ? ', TrackedEntity/<uid>' : ''})`,
    );
  const result = await (source.kind === 'dhis2'
    ? mapDhis2Ref(set, source, type, id, logger, note)
    : mapFhirRef(set, source, type, id, logger));
  return goLiveAnswer(result, source, note);
}

async function mapFhirRef(
  set: MappingSet,
  source: SourceSettings,
  type: string,
  id: string,
  logger: Logger,
): Promise<MapResult> {
  if (!isResourceType(type)) throw new RefError(`--ref: ${type} is not a FHIR R4 resource type`);
  if (!isFhirId(id)) throw new RefError('--ref: the id is not a FHIR id (letters, digits, - and ., at most 64)');
  const mappings = set.mappings.filter((m) => m.source === 'fhir');
  if (mappings.length === 0) throw new RefError(`no fhir mapping loaded for source ${source.id}`);
  const client = new FhirSourceClient(source, { logger });
  try {
    const fetcher = new CachingFetcher(client);
    const resource = await fetcher.read(type, id);
    if (!resource) throw notFound(source, type);
    // The record itself when it is a mapping's subject; else the subjects it is about, as a poll that
    // found it changed evaluates them (an Encounter: its Patient).
    const subjects: Candidate[] = mappings
      .filter((m) => m.subjectType === type)
      .map((m) => ({ mappingId: m.id, subjectRef: `${type}/${resource.id ?? id}` }));
    if (subjects.length === 0)
      subjects.push(...set.subjectsFor(resource).filter((s) => mappings.some((m) => m.id === s.mappingId)));
    const types = [...new Set(mappings.map((m) => m.subjectType))].join(' or ');
    return (await mapCandidates(set, subjects, fetcher, {}, `the ${type} is about no ${types} the mappings read`))
      .result;
  } finally {
    client.close();
  }
}

async function mapDhis2Ref(
  set: MappingSet,
  source: SourceSettings,
  type: string,
  uid: string,
  logger: Logger,
  note: (text: string) => void,
): Promise<MapResult> {
  if (!DHIS2_TYPES.includes(type))
    throw new RefError(`--ref: a DHIS2 source takes TrackedEntity/<uid> or Event/<uid>, not ${type}`);
  if (!isDhis2Uid(uid)) throw new RefError('--ref: not a DHIS2 uid (11 letters and digits, a letter first)');
  const mappings = set.mappings.filter((m) => m.source === 'dhis2');
  if (mappings.length === 0) throw new RefError(`no dhis2 mapping loaded for source ${source.id}`);
  const dhis2 = dhis2SettingsOf(source);
  const client = new Dhis2Client(source, { logger });
  try {
    let entityUid = uid;
    if (type === 'Event') {
      // An event is mapped as part of its tracked entity, as the poller reads it.
      const event = await client.event(uid);
      if (!event) throw notFound(source, type);
      if (!event.trackedEntity || !isDhis2Uid(event.trackedEntity))
        throw new RefError(`--ref: the Event names no tracked entity (a program without registration?)`);
      entityUid = event.trackedEntity;
    }
    // In the programme and with the fields the poller lists them with.
    const entity = await client.trackedEntity(entityUid, { program: dhis2.program, fields: dhis2.fields });
    const resource: Resource | undefined = entity ? trackedEntityResource(entity) : undefined;
    // Polls list the programme's enrollments only: a tracked entity not enrolled in it (a mother, read through
    // her child's relationship) is never polled, whatever the org units. Read without the programme (its
    // enrollments, nothing personal) to tell that apart from a record outside the source's other filters.
    const enrolled = async (): Promise<boolean | undefined> => {
      const bare = await client.trackedEntity(entityUid, { fields: 'trackedEntity,enrollments[enrollment,program]' });
      return bare ? (bare.enrollments ?? []).some((en) => en.program === dhis2.program) : undefined;
    };
    const notEnrolled = `is not enrolled in programme ${dhis2.program}, the one source ${source.id} polls (a mother is read through her child's relationship, not polled herself)`;
    if (!resource) {
      if ((await enrolled()) === false) throw new RefError(`--ref: this TrackedEntity ${notEnrolled}`);
      throw notFound(source, 'TrackedEntity', ` in program ${dhis2.program}`);
    }
    if ((await enrolled()) === false)
      note(`Note: this tracked entity ${notEnrolled}: serve would not read it. Mapped anyway.`);
    // Read by uid, a record is found wherever the user may see it; `serve` polls only what its list query
    // finds (org units, their mode, the tracked entity type, the enrollment status). The same query narrowed
    // to this uid lets DHIS2 decide the scope as it does for a poll, the type kept by the bridge as the poller
    // keeps it (DHIS2 refuses a type with a programme): the dry run still maps it, and says so.
    else if (dhis2.orgUnits?.length || dhis2.orgUnitMode || dhis2.trackedEntityType || dhis2.enrollmentStatus) {
      const page = await client.trackedEntityPage({
        ...trackedEntityFilter(dhis2),
        trackedEntities: resource.id ?? entityUid,
        fields: 'trackedEntity,trackedEntityType',
      });
      const polled = page.entities.some(
        (te) => te.trackedEntity === (resource.id ?? entityUid) && isOfTrackedEntityType(dhis2, te),
      );
      if (!polled)
        note(
          `Note: this tracked entity is outside what source ${source.id} polls (sources[].dhis2: orgUnits, orgUnitMode, trackedEntityType, enrollmentStatus): serve would not read it. Mapped anyway.`,
        );
    }
    const fetcher: ResourceFetcher & { prime(r: Resource[]): void } = new Dhis2Fetcher(client, dhis2.fields);
    fetcher.prime([resource]);
    const subjects = mappings
      .filter((m) => m.subjectType === 'TrackedEntity')
      .map((m) => ({ mappingId: m.id, subjectRef: `TrackedEntity/${resource.id}` }));
    return (await mapCandidates(set, subjects, fetcher, {}, 'no mapping reads a TrackedEntity')).result;
  } finally {
    client.close();
  }
}

/** The id is not repeated: the person typed it, and the message may end up in a log. */
function notFound(source: SourceSettings, type: string, where = ''): RefError {
  return new RefError(`--ref: source ${source.id} has no such ${type}${where} (not found, or deleted)`);
}
