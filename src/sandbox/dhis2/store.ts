import { ATTRIBUTE_METADATA, TRACKED_ENTITY_TYPE_ATTRIBUTES } from './constants.js';
import { MonotonicClock } from './time.js';
import type { Attribute, Enrollment, Event, Relationship, RelationshipItem, TrackedEntity, Uid } from './types.js';

/**
 * The simulator's data, kept flat and normalised the way DHIS2 stores it (tracked entities, enrollments,
 * events and relationships in their own tables, linked by uid). Nested export views are built on read,
 * so a write to one event shows up in every view that contains it.
 */
export class TrackerStore {
  readonly clock: MonotonicClock;
  private readonly trackedEntities = new Map<Uid, TrackedEntity>();
  private readonly enrollments = new Map<Uid, Enrollment>();
  private readonly events = new Map<Uid, Event>();
  private readonly relationships = new Map<Uid, Relationship>();
  // Parent → children indexes, so nested views and filters stay linear in the size of a page.
  private readonly enrollmentsByTrackedEntity = new Map<Uid, Set<Uid>>();
  private readonly eventsByEnrollment = new Map<Uid, Set<Uid>>();
  private readonly relationshipsByItem = new Map<string, Set<Uid>>();
  /** Insertion order: DHIS2 orders by internal id (newest first) when no `order` is given. */
  private readonly sequence = new Map<Uid, number>();
  private nextSequence = 1;
  private readonly orgUnits = new Set<string>();
  private readonly programs = new Set<string>();

  constructor(clock: MonotonicClock = new MonotonicClock()) {
    this.clock = clock;
  }

  reset(): void {
    this.trackedEntities.clear();
    this.enrollments.clear();
    this.events.clear();
    this.relationships.clear();
    this.enrollmentsByTrackedEntity.clear();
    this.eventsByEnrollment.clear();
    this.relationshipsByItem.clear();
    this.sequence.clear();
    this.orgUnits.clear();
    this.programs.clear();
  }

  // ---- raw access (stored objects; callers must not mutate them except through put*) ----

  trackedEntity(uid: Uid): TrackedEntity | undefined {
    return this.trackedEntities.get(uid);
  }
  enrollment(uid: Uid): Enrollment | undefined {
    return this.enrollments.get(uid);
  }
  event(uid: Uid): Event | undefined {
    return this.events.get(uid);
  }
  relationship(uid: Uid): Relationship | undefined {
    return this.relationships.get(uid);
  }
  /** Live tracked entities; soft-deleted ones too with `includeDeleted` (DHIS2's `includeDeleted=true`). */
  allTrackedEntities(options: { includeDeleted?: boolean } = {}): TrackedEntity[] {
    return [...this.trackedEntities.values()].filter((te) => options.includeDeleted || !te.deleted);
  }
  allEnrollments(): Enrollment[] {
    return [...this.enrollments.values()].filter((en) => !en.deleted);
  }
  allEvents(): Event[] {
    return [...this.events.values()].filter((ev) => !ev.deleted);
  }
  order(uid: Uid): number {
    return this.sequence.get(uid) ?? 0;
  }

  /** Every organisation unit referenced by stored data (used to tell unknown org units from empty ones). */
  orgUnitsInData(): ReadonlySet<string> {
    return this.orgUnits;
  }

  /**
   * Every programme referenced by stored data: the metadata does not check a seed's or an import's
   * programmes, so a programme with data counts as one DHIS2 has (see export-routes).
   */
  programsInData(): ReadonlySet<string> {
    return this.programs;
  }

  /**
   * `includeDeleted`: soft-deleted ones too. Deleting a tracked entity soft-deletes its enrollments and
   * their events (writer.ts), so a deleted one is found in its programme only this way.
   */
  enrollmentsOf(trackedEntity: Uid, options: { includeDeleted?: boolean } = {}): Enrollment[] {
    return this.children(this.enrollmentsByTrackedEntity, trackedEntity, this.enrollments, options.includeDeleted);
  }
  eventsOf(enrollment: Uid, options: { includeDeleted?: boolean } = {}): Event[] {
    return this.children(this.eventsByEnrollment, enrollment, this.events, options.includeDeleted);
  }

  /** Relationships with the given object at either end (DHIS2 lists both directions). */
  relationshipsOf(kind: keyof RelationshipItem, uid: Uid): Relationship[] {
    return this.children(this.relationshipsByItem, `${kind}:${uid}`, this.relationships);
  }

  private children<T extends object>(
    index: Map<string, Set<Uid>>,
    key: string,
    table: Map<Uid, T>,
    includeDeleted = false,
  ): T[] {
    const out: T[] = [];
    for (const uid of index.get(key) ?? []) {
      const item = table.get(uid);
      if (item && (includeDeleted || !('deleted' in item && item.deleted))) out.push(item);
    }
    return out;
  }

  private link(index: Map<string, Set<Uid>>, before: string | undefined, after: string | undefined, uid: Uid): void {
    if (before === after) return;
    if (before !== undefined) index.get(before)?.delete(uid);
    if (after === undefined) return;
    const set = index.get(after) ?? new Set<Uid>();
    set.add(uid);
    index.set(after, set);
  }

  private relationshipKeys(rel: Relationship | undefined): string[] {
    if (!rel) return [];
    return [rel.from, rel.to].flatMap((item) =>
      (['trackedEntity', 'enrollment', 'event'] as const).flatMap((kind) => {
        const uid = itemUid(item, kind);
        return uid ? [`${kind}:${uid}`] : [];
      }),
    );
  }

  // ---- writes ----

  putTrackedEntity(te: TrackedEntity & { trackedEntity: Uid }): void {
    this.remember(te.trackedEntity, te.orgUnit);
    this.trackedEntities.set(te.trackedEntity, te);
  }
  putEnrollment(en: Enrollment & { enrollment: Uid }): void {
    this.remember(en.enrollment, en.orgUnit);
    if (en.program) this.programs.add(en.program);
    this.link(
      this.enrollmentsByTrackedEntity,
      this.enrollments.get(en.enrollment)?.trackedEntity,
      en.trackedEntity,
      en.enrollment,
    );
    this.enrollments.set(en.enrollment, en);
  }
  putEvent(ev: Event & { event: Uid }): void {
    this.remember(ev.event, ev.orgUnit);
    if (ev.program) this.programs.add(ev.program);
    this.link(this.eventsByEnrollment, this.events.get(ev.event)?.enrollment, ev.enrollment, ev.event);
    this.events.set(ev.event, ev);
  }
  putRelationship(rel: Relationship & { relationship: Uid }): void {
    this.remember(rel.relationship);
    for (const key of this.relationshipKeys(this.relationships.get(rel.relationship)))
      this.link(this.relationshipsByItem, key, undefined, rel.relationship);
    for (const key of this.relationshipKeys(rel)) this.link(this.relationshipsByItem, undefined, key, rel.relationship);
    this.relationships.set(rel.relationship, rel);
  }
  deleteRelationship(uid: Uid): void {
    for (const key of this.relationshipKeys(this.relationships.get(uid)))
      this.link(this.relationshipsByItem, key, undefined, uid);
    this.relationships.delete(uid);
  }

  private remember(uid: Uid, orgUnit?: string): void {
    if (orgUnit) this.orgUnits.add(orgUnit);
    if (!this.sequence.has(uid)) this.sequence.set(uid, this.nextSequence++);
  }

  // ---- export views (full; the `fields` filter trims them) ----

  /**
   * A tracked entity with enrollments (only `program`'s when given), relationships and program owners;
   * `includeDeleted`: soft-deleted enrollments and events too, as DHIS2 lists them with `includeDeleted=true`.
   */
  trackedEntityView(
    te: TrackedEntity,
    program?: Uid,
    options: { allAttributes?: boolean; includeDeleted?: boolean } = {},
  ): TrackedEntity {
    const uid = te.trackedEntity ?? '';
    const deleted = { includeDeleted: options.includeDeleted === true };
    const enrollments = this.enrollmentsOf(uid, deleted).filter((en) => !program || en.program === program);
    const owners = new Map<string, string>();
    for (const en of this.enrollmentsOf(uid, deleted))
      if (en.program && !owners.has(en.program)) owners.set(en.program, en.orgUnit ?? '');
    // Without a programme, DHIS2 lists the tracked entity type's attributes only; with one, the
    // programme's too (the simulator does not keep which programme an attribute belongs to: all).
    const listed = (te.attributes ?? []).filter(
      (a) => program || options.allAttributes || TRACKED_ENTITY_TYPE_ATTRIBUTES.has(a.attribute),
    );
    return {
      ...te,
      attributes: listed.map(withMetadata),
      enrollments: enrollments.map((en) => this.enrollmentView(en, deleted)),
      relationships: this.relationshipsOf('trackedEntity', uid).map((rel) => this.relationshipView(rel)),
      programOwners: [...owners].map(([ownerProgram, orgUnit]) => ({
        orgUnit,
        trackedEntity: uid,
        program: ownerProgram,
      })),
    };
  }

  /** An enrollment with its events (soft-deleted ones too with `includeDeleted`), its relationships and the tracked entity's attributes. */
  enrollmentView(en: Enrollment, options: { includeDeleted?: boolean } = {}): Enrollment {
    const uid = en.enrollment ?? '';
    const te = en.trackedEntity ? this.trackedEntities.get(en.trackedEntity) : undefined;
    return {
      ...en,
      events: this.eventsOf(uid, options).map((ev) => this.eventView(ev)),
      relationships: this.relationshipsOf('enrollment', uid).map((rel) => this.relationshipView(rel)),
      attributes: (te?.attributes ?? []).map(withMetadata),
      notes: en.notes ?? [],
    };
  }

  eventView(ev: Event): Event {
    return {
      ...ev,
      dataValues: ev.dataValues ?? [],
      notes: ev.notes ?? [],
      relationships: this.relationshipsOf('event', ev.event ?? '').map((rel) => this.relationshipView(rel)),
    };
  }

  /** Relationship ends embed the related object (attributes included) so a client can read the mother's name. */
  relationshipView(rel: Relationship): Relationship {
    return {
      ...rel,
      bidirectional: rel.bidirectional ?? false,
      from: this.itemView(rel.from),
      to: this.itemView(rel.to),
    };
  }

  private itemView(item: RelationshipItem): RelationshipItem {
    const teUid = itemUid(item, 'trackedEntity');
    if (teUid) {
      const te = this.trackedEntities.get(teUid);
      const { enrollments: _e, relationships: _r, programOwners: _p, ...flat } = te ?? {};
      return { trackedEntity: { ...flat, trackedEntity: teUid, attributes: (te?.attributes ?? []).map(withMetadata) } };
    }
    const enUid = itemUid(item, 'enrollment');
    if (enUid) {
      const { events: _e, relationships: _r, ...flat } = this.enrollments.get(enUid) ?? {};
      return { enrollment: { ...flat, enrollment: enUid } };
    }
    const evUid = itemUid(item, 'event');
    const { relationships: _r, ...flat } = (evUid ? this.events.get(evUid) : undefined) ?? {};
    return { event: { ...flat, event: evUid ?? '' } };
  }
}

export function itemUid(item: RelationshipItem, kind: keyof RelationshipItem): Uid | undefined {
  if (kind === 'trackedEntity') return item.trackedEntity?.trackedEntity;
  if (kind === 'enrollment') return item.enrollment?.enrollment;
  return item.event?.event;
}

/** DHIS2 fills displayName/valueType/code from metadata on export; payload copies are not trusted. */
function withMetadata(attribute: Attribute): Attribute {
  const meta = ATTRIBUTE_METADATA[attribute.attribute];
  if (!meta) return { ...attribute };
  return { ...attribute, ...meta };
}
