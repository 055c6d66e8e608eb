import { BABY_POSTNATAL_STAGE, BIRTH_STAGE, CHILD_PROGRAMME, DEATH_PROGRAMME, DEATH_STAGE } from './constants.js';
import { generateUid } from './time.js';
import type { Enrollment, Event, Relationship, TrackedEntity, TrackerImportPayload, Uid } from './types.js';

export type WithUid<T, K extends string> = T & { [P in K]: Uid };

/** A tracker payload with every object in its own list, every uid assigned and every parent link filled in. */
export interface FlatPayload {
  trackedEntities: WithUid<TrackedEntity, 'trackedEntity'>[];
  enrollments: WithUid<Enrollment, 'enrollment'>[];
  events: WithUid<Event, 'event'>[];
  relationships: WithUid<Relationship, 'relationship'>[];
}

/** Programme of a stage, for events that name only their stage (DHIS2's preprocessor does the same lookup). */
const STAGE_PROGRAMME: Record<string, string> = {
  [BIRTH_STAGE]: CHILD_PROGRAMME,
  [BABY_POSTNATAL_STAGE]: CHILD_PROGRAMME,
  [DEATH_STAGE]: DEATH_PROGRAMME,
};

export function programOfStage(stage: string | undefined): string | undefined {
  return stage ? STAGE_PROGRAMME[stage] : undefined;
}

/**
 * DHIS2 accepts nested payloads (enrollments inside tracked entities, events inside enrollments,
 * relationships anywhere) and flat ones; both are flattened before validation, generating the uids the
 * client left out so children can point at their parents.
 */
export function flatten(payload: TrackerImportPayload): FlatPayload {
  const out: FlatPayload = { trackedEntities: [], enrollments: [], events: [], relationships: [] };

  const pushRelationships = (list: Relationship[] | undefined) => {
    for (const rel of list ?? []) out.relationships.push({ ...rel, relationship: rel.relationship ?? generateUid() });
  };
  const pushEvent = (ev: Event, parent?: Enrollment) => {
    const { relationships, ...rest } = ev;
    out.events.push({
      ...rest,
      event: rest.event ?? generateUid(),
      enrollment: rest.enrollment ?? parent?.enrollment,
      trackedEntity: rest.trackedEntity ?? parent?.trackedEntity,
      program: rest.program ?? parent?.program,
    });
    pushRelationships(relationships);
  };
  const pushEnrollment = (en: Enrollment, parent?: Uid) => {
    const { events, relationships, ...rest } = en;
    const flat = { ...rest, enrollment: rest.enrollment ?? generateUid(), trackedEntity: rest.trackedEntity ?? parent };
    out.enrollments.push(flat);
    for (const ev of events ?? []) pushEvent(ev, flat);
    pushRelationships(relationships);
  };

  for (const te of payload.trackedEntities ?? []) {
    const { enrollments, relationships, programOwners: _owners, ...rest } = te;
    const uid = rest.trackedEntity ?? generateUid();
    out.trackedEntities.push({ ...rest, trackedEntity: uid });
    for (const en of enrollments ?? []) pushEnrollment(en, uid);
    pushRelationships(relationships);
  }
  for (const en of payload.enrollments ?? []) pushEnrollment(en);
  for (const ev of payload.events ?? []) pushEvent(ev);
  pushRelationships(payload.relationships);
  return out;
}
