import type { FlatPayload, WithUid } from './flatten.js';
import { programOfStage } from './flatten.js';
import type { TrackerStore } from './store.js';
import { formatDhis2DateTime, generateUid, normaliseDhis2DateTime, parseDhis2DateTime } from './time.js';
import type { Attribute, DataValue, Enrollment, Event, Note, Relationship, TrackedEntity, Uid } from './types.js';
import type { Action } from './validate.js';

/**
 * `value` with its uid (`first`) first and its other fields in alphabetical order. DHIS2 exports an object's
 * fields in its DTO's order, the same after any import; an object built from an import's fields would
 * instead follow the importing client's order (an UPDATE sent without the server-owned `createdAt` would
 * move it), and a client fingerprinting the JSON it reads would see a change where there is none.
 */
function inFixedOrder<T extends object>(value: T, first: keyof T & string): T {
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = { [first]: record[first] };
  for (const key of Object.keys(record).sort()) if (key !== first) out[key] = record[key];
  return out as T;
}

/** Applies a validated, flattened payload to the store (see importTracker for the timestamp rules). */
export class Writer {
  private readonly now: string;
  private readonly touched = new Set<Uid>();

  constructor(
    private readonly store: TrackerStore,
    private readonly keepTimestamps: boolean,
    private readonly actions: Map<Uid, Action>,
  ) {
    this.now = formatDhis2DateTime(store.clock.now());
  }

  /** The payload's timestamp when seeding (and the clock moved past it), the server time otherwise. */
  private stamp(given: string | undefined): string {
    const kept = this.keepTimestamps ? normaliseDhis2DateTime(given) : undefined;
    if (kept === undefined) return this.now;
    this.store.clock.observe(parseDhis2DateTime(kept) ?? 0);
    return kept;
  }

  write(flat: FlatPayload): void {
    for (const te of flat.trackedEntities) this.trackedEntity(te);
    for (const en of flat.enrollments) this.enrollment(en);
    for (const ev of flat.events) this.event(ev);
    for (const rel of flat.relationships) this.relationship(rel);
    if (this.keepTimestamps) return;
    for (const uid of this.touched) {
      const te = this.store.trackedEntity(uid);
      if (te) this.store.putTrackedEntity({ ...te, trackedEntity: uid, updatedAt: this.now });
    }
  }

  private trackedEntity(te: WithUid<TrackedEntity, 'trackedEntity'>): void {
    const action = this.actions.get(te.trackedEntity);
    const old = this.store.trackedEntity(te.trackedEntity);
    if (action === 'delete') {
      this.deleteTrackedEntity(te.trackedEntity);
      return;
    }
    const { attributes, trackedEntity, ...props } = te;
    this.store.putTrackedEntity(
      inFixedOrder(
        {
          trackedEntity,
          ...props,
          createdAt: old?.createdAt ?? this.stamp(te.createdAt),
          updatedAt: this.stamp(te.updatedAt),
          inactive: te.inactive ?? false,
          deleted: false,
          potentialDuplicate: te.potentialDuplicate ?? false,
          attributes: this.merge(old?.attributes ?? [], attributes, (a) => a.attribute),
        },
        'trackedEntity',
      ),
    );
  }

  private enrollment(en: WithUid<Enrollment, 'enrollment'>): void {
    const action = this.actions.get(en.enrollment);
    const old = this.store.enrollment(en.enrollment);
    if (action === 'delete') {
      this.deleteEnrollment(en.enrollment);
      return;
    }
    const { attributes, notes, enrollment, ...props } = en;
    const teUid = en.trackedEntity ?? old?.trackedEntity ?? '';
    // Attributes sent on an enrollment are the tracked entity's (program) attributes.
    const te = this.store.trackedEntity(teUid);
    if (te && attributes?.length) {
      this.store.putTrackedEntity({
        ...te,
        trackedEntity: teUid,
        attributes: this.merge(te.attributes ?? [], attributes, (a) => a.attribute),
      });
    }
    this.store.putEnrollment(
      inFixedOrder(
        {
          enrollment,
          ...props,
          trackedEntity: teUid,
          // DHIS2's DTO defaults a missing status to ACTIVE, also on update.
          status: en.status ?? 'ACTIVE',
          enrolledAt: normaliseDhis2DateTime(en.enrolledAt),
          occurredAt: normaliseDhis2DateTime(en.occurredAt ?? en.enrolledAt),
          createdAt: old?.createdAt ?? this.stamp(en.createdAt),
          updatedAt: this.stamp(en.updatedAt),
          followUp: en.followUp ?? false,
          deleted: false,
          notes: this.notes(old?.notes, notes),
        },
        'enrollment',
      ),
    );
    this.touched.add(teUid);
  }

  private event(ev: WithUid<Event, 'event'>): void {
    const action = this.actions.get(ev.event);
    const old = this.store.event(ev.event);
    if (action === 'delete') {
      this.deleteEvent(ev.event);
      return;
    }
    const { dataValues, notes, enrollmentStatus: _status, event, ...props } = ev;
    const enrollmentUid = ev.enrollment ?? old?.enrollment;
    const enrollment = enrollmentUid ? this.store.enrollment(enrollmentUid) : undefined;
    this.store.putEvent(
      inFixedOrder(
        {
          event,
          ...props,
          status: ev.status ?? 'ACTIVE',
          program: ev.program ?? enrollment?.program ?? programOfStage(ev.programStage),
          enrollment: enrollmentUid,
          trackedEntity: enrollment?.trackedEntity ?? ev.trackedEntity,
          occurredAt: normaliseDhis2DateTime(ev.occurredAt),
          scheduledAt: normaliseDhis2DateTime(ev.scheduledAt),
          completedAt: ev.status === 'COMPLETED' ? (normaliseDhis2DateTime(ev.completedAt) ?? this.now) : undefined,
          followUp: ev.followUp ?? false,
          deleted: false,
          createdAt: old?.createdAt ?? this.stamp(ev.createdAt),
          updatedAt: this.stamp(ev.updatedAt),
          dataValues: this.merge(old?.dataValues ?? [], dataValues, (d) => d.dataElement),
          notes: this.notes(old?.notes, notes),
        },
        'event',
      ),
    );
    if (enrollment?.trackedEntity) this.touched.add(enrollment.trackedEntity);
  }

  private relationship(rel: WithUid<Relationship, 'relationship'>): void {
    const uid = rel.relationship;
    const action = this.actions.get(uid);
    if (action === 'ignore') return;
    const ends = [rel.from.trackedEntity?.trackedEntity, rel.to.trackedEntity?.trackedEntity];
    if (action === 'delete') this.store.deleteRelationship(uid);
    else {
      this.store.putRelationship({
        relationship: uid,
        relationshipType: rel.relationshipType,
        bidirectional: rel.bidirectional ?? false,
        createdAt: this.stamp(rel.createdAt),
        updatedAt: this.stamp(rel.updatedAt),
        from: rel.from,
        to: rel.to,
      });
    }
    for (const te of ends) if (te) this.touched.add(te);
  }

  /** Values merge by key: new keys are added, changed values replaced, `null`/`""` deletes. */
  private merge<T extends Attribute | DataValue>(
    existing: T[],
    incoming: T[] | undefined,
    key: (value: T) => string,
  ): T[] {
    const out = new Map(existing.map((value) => [key(value), value]));
    for (const value of incoming ?? []) {
      const id = key(value);
      const before = out.get(id);
      if (value.value === null || value.value === '') out.delete(id);
      else if (!before)
        out.set(id, { ...value, createdAt: this.stamp(value.createdAt), updatedAt: this.stamp(value.updatedAt) });
      else if (before.value !== value.value)
        out.set(id, { ...before, value: value.value, updatedAt: this.stamp(value.updatedAt) });
    }
    return [...out.values()];
  }

  /** Notes are append-only in DHIS2; a note whose uid is already stored is not added twice. */
  private notes(existing: Note[] | undefined, incoming: Note[] | undefined): Note[] {
    const out = [...(existing ?? [])];
    for (const note of incoming ?? []) {
      if (note.note && out.some((n) => n.note === note.note)) continue;
      out.push({
        note: note.note ?? generateUid(),
        value: note.value,
        storedAt: this.stamp(note.storedAt),
        storedBy: note.storedBy ?? 'admin',
      });
    }
    return out;
  }

  private deleteEvent(uid: Uid): void {
    const ev = this.store.event(uid);
    if (!ev) return;
    this.store.putEvent({ ...ev, event: uid, deleted: true, updatedAt: this.now });
    if (ev.trackedEntity) this.touched.add(ev.trackedEntity);
  }

  private deleteEnrollment(uid: Uid): void {
    const en = this.store.enrollment(uid);
    if (!en) return;
    for (const ev of this.store.eventsOf(uid)) if (ev.event) this.deleteEvent(ev.event);
    this.store.putEnrollment({ ...en, enrollment: uid, deleted: true, updatedAt: this.now });
    if (en.trackedEntity) this.touched.add(en.trackedEntity);
  }

  private deleteTrackedEntity(uid: Uid): void {
    const te = this.store.trackedEntity(uid);
    if (!te) return;
    for (const en of this.store.enrollmentsOf(uid)) if (en.enrollment) this.deleteEnrollment(en.enrollment);
    for (const rel of this.store.relationshipsOf('trackedEntity', uid))
      if (rel.relationship) this.store.deleteRelationship(rel.relationship);
    this.store.putTrackedEntity({ ...te, trackedEntity: uid, deleted: true, updatedAt: this.now });
    this.touched.delete(uid);
  }
}
