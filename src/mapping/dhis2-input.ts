// DHIS2 tracker JSON as mapping input. Mappings with `source: dhis2` read tracked entities as plain JSON
// (FHIRPath with no model); the engine only needs a `resourceType` and an `id` on the objects it addresses,
// so a tracked entity becomes `TrackedEntity/<uid>` and its nested enrollments and events `Enrollment/<uid>`
// and `Event/<uid>` (a trigger rule can then name the birth event as the source of the notification).
// Used by the DHIS2 poller (on validated payloads) and by `map --input` (on whatever the file holds).
import { isObject } from '../util/is-object.js';
import type { Resource, ResourceFetcher } from './types.js';

type Obj = Record<string, unknown>;

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** `meta.versionId` is DHIS2's `updatedAt`: the ledger shows which version of the record was mapped. */
function tagged(type: string, uid: string, source: Obj): Resource {
  const updatedAt = text(source.updatedAt);
  return { ...source, resourceType: type, id: uid, ...(updatedAt ? { meta: { versionId: updatedAt } } : {}) };
}

function eventResource(event: Obj): Obj {
  const uid = text(event.event);
  return uid ? { ...tagged('Event', uid, event) } : event;
}

function enrollmentResource(enrollment: Obj): Obj {
  const uid = text(enrollment.enrollment);
  const events = list(enrollment.events).filter(isObject).map(eventResource);
  const withEvents = { ...enrollment, events };
  return uid ? { ...tagged('Enrollment', uid, withEvents) } : withEvents;
}

/** A tracked entity (as DHIS2 exports it) → the Resource mappings see; undefined without a uid. */
export function trackedEntityResource(trackedEntity: Obj): Resource | undefined {
  const uid = text(trackedEntity.trackedEntity);
  if (!uid) return undefined;
  const enrollments = list(trackedEntity.enrollments).filter(isObject).map(enrollmentResource);
  return tagged('TrackedEntity', uid, { ...trackedEntity, enrollments });
}

/** The tracked entities embedded in relationship ends (DHIS2 exports them with their attributes). */
export function relatedTrackedEntities(trackedEntity: Obj): Obj[] {
  const out: Obj[] = [];
  for (const rel of list(trackedEntity.relationships).filter(isObject)) {
    for (const end of [rel.from, rel.to]) {
      const te = isObject(end) ? end.trackedEntity : undefined;
      if (isObject(te) && text(te.trackedEntity) && te.trackedEntity !== trackedEntity.trackedEntity) out.push(te);
    }
  }
  return out;
}

/** A single event (or a list of them) grouped into the tracked entities they belong to. */
function trackedEntitiesFromEvents(events: Obj[]): Obj[] {
  const byEntity = new Map<string, Obj>();
  for (const event of events) {
    const uid = text(event.trackedEntity);
    if (!uid)
      throw new Error(
        'DHIS2 input: the event has no trackedEntity; only tracker (registration) programs can be mapped',
      );
    const entity = byEntity.get(uid) ?? { trackedEntity: uid, orgUnit: event.orgUnit, enrollments: [] };
    const enrollments = list(entity.enrollments).filter(isObject);
    let enrollment = enrollments.find((en) => en.enrollment === event.enrollment);
    if (!enrollment) {
      enrollment = { enrollment: event.enrollment, program: event.program, orgUnit: event.orgUnit, events: [] };
      enrollments.push(enrollment);
    }
    enrollment.events = [...list(enrollment.events), event];
    byEntity.set(uid, { ...entity, enrollments });
  }
  return [...byEntity.values()];
}

/**
 * The tracked entities in a `map --input` file, or undefined when the input is not DHIS2 tracker JSON: one
 * tracked entity, a list response (`trackedEntities`/`instances`), an import payload, an array of tracked
 * entities, one event, or an events list (grouped by tracked entity; attributes are then absent).
 */
export function dhis2TrackedEntities(input: unknown): Obj[] | undefined {
  const items = Array.isArray(input) ? input.filter(isObject) : isObject(input) ? [input] : [];
  if (items.length === 0 || items.some((item) => 'resourceType' in item)) return undefined;
  if (items.every((item) => text(item.trackedEntity) && !text(item.event))) return items;
  if (items.every((item) => text(item.event))) return trackedEntitiesFromEvents(items);
  const [first] = items;
  if (items.length !== 1 || !first) return undefined;
  // An import payload's tracked entities may have no uid yet (DHIS2 assigns one on import): a placeholder
  // lets the dry run map them.
  const entities = list(first.trackedEntities ?? first.instances)
    .filter(isObject)
    .map((entity, i) =>
      text(entity.trackedEntity) ? entity : { ...entity, trackedEntity: `import-payload-${i + 1}` },
    );
  if (entities.length) return entities;
  const events = list(first.events).filter(isObject);
  return events.length ? trackedEntitiesFromEvents(events) : undefined;
}

/** An in-memory fetcher over DHIS2 input: reads `TrackedEntity/<uid>`, including related people embedded in relationships. */
export function dhis2InputFetcher(input: unknown): (ResourceFetcher & { resources: Resource[] }) | undefined {
  const entities = dhis2TrackedEntities(input);
  if (!entities) return undefined;
  const resources = entities.map(trackedEntityResource).filter((r): r is Resource => r !== undefined);
  const byId = new Map(resources.map((r) => [r.id, r]));
  for (const entity of entities) {
    for (const related of relatedTrackedEntities(entity)) {
      const resource = trackedEntityResource(related);
      if (resource && !byId.has(resource.id)) byId.set(resource.id, resource);
    }
  }
  return {
    resources,
    async read(type, id) {
      return type === 'TrackedEntity' ? byId.get(id) : undefined;
    },
    async search() {
      return [];
    },
  };
}
