// Write-back to DHIS2: the tracking id into a data element of the event (the trigger event, or the event of
// a configured program stage), or into a tracked entity attribute, through POST /api/tracker (UPDATE).
// Idempotent: when DHIS2 already holds the value nothing is written, so a retry after a lost answer does not
// bump `updatedAt` again. Never an overwrite of another value: a field that holds one is left as it is
// (occupied). The one exception is the bridge's own: a tracking id this row's job wrote before it restarted
// for a new one (the row delivered again after OpenCRVS lost the event), which the new id replaces.
import type { WriteBackSettings } from '../../config/types.js';
import {
  type CallOptions,
  type Dhis2Client,
  Dhis2SourceError,
  type ImportReport,
  type TrackerEvent,
  type TrackerTrackedEntity,
} from '../dhis2/index.js';
import {
  splitRef,
  toWriteBackError,
  WriteBackError,
  type WriteBackJob,
  type WriteBackTarget,
  type WriteResult,
} from './types.js';

// An UPDATE must carry every field of the object, changed or not, or DHIS2 resets it (status, geometry,
// inactive…); collections are the exception: items left out stay as they are. So the object goes back as
// read, without what the server owns, and its collection holds our one value only: sending the other data
// values or attributes back as read would undo an edit saved between our read and our write.
/** Fields of an exported object that an import must not carry back (server-owned or separately imported). */
const SERVER_OWNED = [
  'createdAt',
  'updatedAt',
  'createdBy',
  'updatedBy',
  'createdAtClient',
  'updatedAtClient',
  'deleted',
];
const EVENT_COLLECTIONS = ['relationships', 'notes', 'dataValues'];
const TRACKED_ENTITY_COLLECTIONS = ['relationships', 'enrollments', 'programOwners', 'attributes'];

/** `object` without the server-owned fields and the given collections. */
function writable(object: Record<string, unknown>, collections: string[]): Record<string, unknown> {
  const body: Record<string, unknown> = { ...object };
  for (const field of [...SERVER_OWNED, ...collections]) delete body[field];
  return body;
}

/** Whether a value read is there: DHIS2 keeps no empty value, but a client's import may have sent one. */
function present(value: string | null | undefined): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

/**
 * A value held that this row's job wrote itself, under a tracking id it had before it restarted for this
 * one (the row delivered again after OpenCRVS lost the event: OpenCRVS no longer knows that id). Only the
 * row's own: another registration's id, or the record's own data, is never one of them.
 */
function ours(job: WriteBackJob, value: string | null | undefined): boolean {
  return typeof value === 'string' && (job.earlierTrackingIds ?? []).includes(value);
}

/**
 * The target holds a value other than this tracking id and the row's earlier ones (see ours): another
 * registration's tracking id (the record notified twice: a second source, a second deployment, a ledger
 * lost) or the record's own data (a `writeBack` naming a field that is not there for the tracking id: the
 * national id). Replacing it would destroy what is there, so the job is abandoned for an operator to look
 * at. Not the value: it may be an identifier, and the job's error reaches the log.
 */
function occupied(target: string): WriteBackError {
  return new WriteBackError(
    `${target} already holds another value (not overwritten): a second registration of the record in OpenCRVS, ` +
      'or the wrong writeBack target; clear it in DHIS2 and re-queue if it should hold this tracking id',
    true,
  );
}

function describeReport(report: ImportReport): string {
  const codes = (report.validationReport?.errorReports ?? []).map((e) => e.errorCode ?? '?');
  return codes.length ? `DHIS2 refused the write (${[...new Set(codes)].join(', ')})` : 'DHIS2 refused the write';
}

export class Dhis2WriteBack implements WriteBackTarget {
  constructor(
    private readonly client: Dhis2Client,
    private readonly settings: WriteBackSettings,
    /** The source's program: the enrollment whose stage event receives the data value. */
    private readonly program: string,
  ) {
    if (!settings.dataElement && !settings.attribute) {
      throw new Error('DHIS2 write-back needs writeBack.dataElement (on an event) or writeBack.attribute');
    }
    if (settings.dataElement && settings.attribute) {
      throw new Error('DHIS2 write-back takes writeBack.dataElement or writeBack.attribute, not both');
    }
  }

  async write(job: WriteBackJob, signal?: AbortSignal): Promise<WriteResult> {
    try {
      return this.settings.attribute
        ? await this.writeAttribute(job, this.settings.attribute, { signal })
        : await this.writeDataValue(job, { signal });
    } catch (err) {
      throw toWriteBackError(err, 'DHIS2 write-back');
    }
  }

  private trackedEntityUid(job: WriteBackJob): string {
    const ref = splitRef(job.subjectKey);
    if (ref?.type !== 'TrackedEntity')
      throw new WriteBackError(`subject ${job.subjectKey} is not a tracked entity`, true);
    return ref.id;
  }

  /**
   * The tracked entity read in the source's programme. DHIS2 answers a read in a programme 404 (403
   * OWNERSHIP_ACCESS_DENIED before dhis2-core #20280) when the record is deleted or its program owner org
   * unit is outside the user's capture scope (a transfer to another district): not shown, which another
   * source's user may be (WriteBackRunner). `permanent`: whether a 404 abandons this write when no source
   * is shown the record; a 403 never does (refused access is an operator's to fix, retried as before).
   */
  private async readInProgram(
    uid: string,
    fields: string,
    call: CallOptions,
    permanent: boolean,
  ): Promise<TrackerTrackedEntity> {
    const notShown = (forGood: boolean, cause?: unknown) =>
      new WriteBackError(
        `tracked entity ${uid} is not shown to this source's user in program ${this.program} (deleted, or its owner org unit is outside the user's capture scope)`,
        forGood,
        { notShown: true, cause },
      );
    let te: TrackerTrackedEntity | undefined;
    try {
      te = await this.client.trackedEntity(uid, { program: this.program, fields }, call);
    } catch (err) {
      // DHIS2 refused the programme, not the record (it has none by that uid, or does not share it with the
      // user): the configuration's fault, which an operator fixes. Retried within the job's budget, as for
      // refused credentials; its 404 must not abandon the write as for a record gone.
      if (err instanceof Dhis2SourceError && err.programRefused)
        throw new WriteBackError(err.message, false, { cause: err });
      // DHIS2's own 403 only: a proxy's or firewall's page says nothing of the record (see Dhis2Client).
      if (err instanceof Dhis2SourceError && err.status === 403 && !err.foreign) throw notShown(false, err);
      throw err;
    }
    if (!te) throw notShown(permanent);
    return te;
  }

  private async writeAttribute(job: WriteBackJob, attribute: string, call: CallOptions): Promise<WriteResult> {
    const uid = this.trackedEntityUid(job);
    // Read in the program, as the poller reads it: its owner and sharing decide whether the user is shown it.
    const te = await this.readInProgram(uid, '*,!enrollments,!relationships,!programOwners', call, true);
    const held = te.attributes?.find((a) => a.attribute === attribute && present(a.value));
    if (held?.value === job.trackingId) return 'already';
    if (held && !ours(job, held.value)) throw occupied(`attribute ${attribute} of the tracked entity`);
    const body = writable(te, TRACKED_ENTITY_COLLECTIONS);
    body.attributes = [{ attribute, value: job.trackingId }];
    await this.send({ trackedEntities: [body] }, call);
    return held ? 'replaced' : 'written';
  }

  private async writeDataValue(job: WriteBackJob, call: CallOptions): Promise<WriteResult> {
    const dataElement = this.settings.dataElement ?? '';
    const event = await this.findEvent(job, call);
    const held = event.dataValues?.find((d) => d.dataElement === dataElement && present(d.value));
    if (held?.value === job.trackingId) return 'already';
    if (held && !ours(job, held.value)) throw occupied(`data element ${dataElement} of the event`);
    const body = writable(event, EVENT_COLLECTIONS);
    body.dataValues = [{ dataElement, value: job.trackingId }];
    await this.send({ events: [body] }, call);
    return held ? 'replaced' : 'written';
  }

  private async findEvent(job: WriteBackJob, call: CallOptions): Promise<TrackerEvent> {
    const stage = this.settings.programStage;
    const trigger = splitRef(job.sourceRef);
    if (trigger?.type === 'Event') {
      let event: TrackerEvent | undefined;
      try {
        event = await this.client.event(trigger.id, call);
      } catch (err) {
        // DHIS2's own 403 (2.41 refuses an event whose program owner is outside the user's capture scope
        // so; 2.42+ answers 404): not shown to this user, which another source's user may be.
        if (!(err instanceof Dhis2SourceError && err.status === 403 && !err.foreign)) throw err;
        if (!stage) throw this.triggerNotShown(job, false, err);
      }
      if (event && (!stage || event.programStage === stage)) return event;
      if (!event && !stage) throw this.triggerNotShown(job, true);
    }
    if (!stage) {
      throw new WriteBackError(
        `the event that triggered ${job.sourceRef} cannot be read; set writeBack.programStage to pick one`,
        true,
      );
    }
    const uid = this.trackedEntityUid(job);
    // Not permanent (as before): the stage's event may be entered later, and the record may come back in scope.
    const te = await this.readInProgram(
      uid,
      'trackedEntity,enrollments[enrollment,program,status,events[event,programStage,status]]',
      call,
      false,
    );
    const candidate = (te.enrollments ?? [])
      .filter((en) => en.program === this.program && en.status !== 'CANCELLED')
      .flatMap((en) => en.events ?? [])
      .find((ev) => ev.programStage === stage);
    // Not permanent: the stage event may be entered later; the retry budget bounds the wait.
    if (!candidate) throw new WriteBackError(`no event of program stage ${stage} for ${job.subjectKey} yet`, false);
    const event = await this.client.event(candidate.event, call);
    // Not its uid: the message reaches the log (a record's uid, as the job's references are kept out).
    if (!event) throw new WriteBackError(`the event of program stage ${stage} vanished between two reads`, false);
    return event;
  }

  /**
   * The trigger event is not shown to this source's user: deleted, or (DHIS2 answering 404, 403 before
   * 2.42) its program owner org unit is outside the user's capture scope, as after a transfer to another
   * district; then another source's user may be shown it (WriteBackRunner.writeThrough), as for the read of
   * the tracked entity with a programStage. `permanent` as readInProgram's: a 403 never abandons the write.
   */
  private triggerNotShown(job: WriteBackJob, permanent: boolean, cause?: unknown): WriteBackError {
    return new WriteBackError(
      `the event that triggered ${job.sourceRef} is not shown to this source's user (deleted, or its owner org unit is outside the user's capture scope)`,
      permanent,
      { notShown: true, cause },
    );
  }

  private async send(payload: Record<string, unknown>, call: CallOptions): Promise<void> {
    const report = await this.client.importTracker(payload, 'UPDATE', call);
    if (report.status === 'ERROR') throw new WriteBackError(describeReport(report), true);
  }
}
