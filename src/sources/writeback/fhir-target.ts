// Write-back to a FHIR source: the tracking id as an `identifier` on the subject Patient (or the trigger
// resource), by a conditional update (If-Match on the version read; a 412 means someone else wrote in
// between: read again and retry), or as a Task / DocumentReference under an id derived from the ledger row,
// so a retry after a lost answer overwrites the same resource instead of creating a second one.
import { createHash } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { WriteBackSettings } from '../../config/types.js';
import { isObject } from '../../util/is-object.js';
import { type CallOptions, type FhirSourceClient, FhirSourceError } from '../fhir/fhir-client.js';
import {
  splitRef,
  toWriteBackError,
  type WriteAnswer,
  WriteBackError,
  type WriteBackJob,
  type WriteBackTarget,
  type WriteResult,
} from './types.js';

/** Conditional updates lost to a concurrent writer before this attempt gives up (the job is retried later). */
const MAX_CONFLICTS = 3;

interface IdentifierLike {
  system?: unknown;
  value?: unknown;
}

function holds(identifiers: unknown, system: string, value: string): boolean {
  const list: unknown[] = Array.isArray(identifiers) ? identifiers : isObject(identifiers) ? [identifiers] : [];
  return list.some((i: IdentifierLike | unknown) => isObject(i) && i.system === system && i.value === value);
}

/** Other tracking ids quoted in a job's note at most (each cut to OTHER_ID_LENGTH): the note stays short. */
const MAX_OTHERS_QUOTED = 3;
const OTHER_ID_LENGTH = 40;

/**
 * The values of `system` in the identifiers other than the job's tracking id and its own earlier ones: the
 * job's earlier ids are the bridge's writes for this very row (delivered again), not another registration.
 */
function othersOfSystem(identifiers: unknown[], system: string, job: WriteBackJob): string[] {
  const own = new Set([job.trackingId, ...(job.earlierTrackingIds ?? [])]);
  const values = identifiers.flatMap((i) =>
    isObject(i) && i.system === system && typeof i.value === 'string' && !own.has(i.value) ? [i.value] : [],
  );
  return [...new Set(values)];
}

/**
 * The answer of a write that kept other tracking ids beside the job's: the identifier is appended (a
 * replacement would lose the other registration's id, which the registrar needs to find the duplicate),
 * and the job says so. The values are tracking ids by the system they are under, not the person's
 * identifiers; quoted so the registrar can look both up in OpenCRVS.
 */
function keptBeside(type: string, system: string, result: 'written' | 'already', others: string[]): WriteAnswer {
  const quoted = others
    .slice(0, MAX_OTHERS_QUOTED)
    .map((id) => (id.length > OTHER_ID_LENGTH ? `${id.slice(0, OTHER_ID_LENGTH)}…` : id));
  const more = others.length > MAX_OTHERS_QUOTED ? ` and ${others.length - MAX_OTHERS_QUOTED} more` : '';
  const note =
    `${type} also holds another tracking id of ${system}: ${quoted.join(', ')}${more} (kept beside this one): ` +
    'a second registration of the record in OpenCRVS, or another event of the same person (a birth and a ' +
    'death); look both up in OpenCRVS';
  return { result, othersHeld: others, note };
}

/** A FHIR id (64 chars max) that is the same for every attempt of one ledger row. */
export function writeBackResourceId(job: WriteBackJob): string {
  const digest = createHash('sha256').update(`${job.sourceId}\n${job.eventType}\n${job.subjectKey}`).digest('hex');
  return `opencrvs-${job.eventType}-${digest.slice(0, 32)}`;
}

export class FhirWriteBack implements WriteBackTarget {
  constructor(
    private readonly client: FhirSourceClient,
    private readonly settings: WriteBackSettings,
  ) {}

  async write(job: WriteBackJob, signal?: AbortSignal): Promise<WriteResult | WriteAnswer> {
    try {
      if (this.settings.target === 'identifier') return await this.addIdentifier(job, { signal });
      return await this.putCarrier(job, { signal });
    } catch (err) {
      throw toWriteBackError(err, 'FHIR write-back');
    }
  }

  private async addIdentifier(job: WriteBackJob, call: CallOptions): Promise<WriteResult | WriteAnswer> {
    const ref = this.settings.resource === 'trigger' ? job.sourceRef : job.subjectKey;
    const target = splitRef(ref);
    if (!target) throw new WriteBackError(`cannot address ${ref} on the FHIR server`, true);
    const system = this.settings.identifierSystem;
    for (let conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
      const current = await this.client.read(target.type, target.id, call);
      if (!current) throw new WriteBackError(`${target.type} ${target.id} no longer exists`, true);
      const existing: unknown = Reflect.get(current, 'identifier');
      const others = othersOfSystem(Array.isArray(existing) ? existing : [], system, job);
      const answer = (result: 'written' | 'already') =>
        others.length > 0 ? keptBeside(target.type, system, result, others) : result;
      // Also when it held this id already: the retry of a write whose answer was lost says it again.
      if (holds(existing, system, job.trackingId)) return answer('already');
      if (existing !== undefined && !Array.isArray(existing)) {
        // e.g. Composition.identifier is a single Identifier: we do not overwrite the source's own.
        throw new WriteBackError(`${target.type}.identifier holds one value only; use target: task`, true);
      }
      const identifier = [...(Array.isArray(existing) ? existing : []), { system, value: job.trackingId }];
      const updated = structuredClone(current);
      Reflect.set(updated, 'identifier', identifier);
      try {
        await this.client.update({ ...updated, id: target.id }, current.meta?.versionId, call);
        return answer('written');
      } catch (err) {
        // Changed under us: read again. R4 servers answer a stale If-Match with 412; HAPI, and servers
        // following STU3, with 409 (a version conflict), which is no refusal of the write itself.
        const stale = err instanceof FhirSourceError && (err.status === 412 || err.status === 409);
        if (stale && current.meta?.versionId !== undefined) continue;
        throw err;
      }
    }
    throw new WriteBackError(`${ref} kept changing (${MAX_CONFLICTS} conflicting updates); retried later`, false);
  }

  private async putCarrier(job: WriteBackJob, call: CallOptions): Promise<WriteResult> {
    const system = this.settings.identifierSystem;
    const type = this.settings.target === 'task' ? 'Task' : 'DocumentReference';
    const id = writeBackResourceId(job);
    const existing = await this.client.read(type, id, call);
    if (existing && holds(Reflect.get(existing, 'identifier'), system, job.trackingId)) return 'already';
    const identifier = [{ system, value: job.trackingId }];
    const label = `OpenCRVS ${job.eventType} notification, tracking id`;
    const resource: Resource & { id: string } =
      type === 'Task'
        ? {
            resourceType: 'Task',
            id,
            status: 'completed',
            intent: 'order',
            identifier,
            businessStatus: { text: 'notified to OpenCRVS' },
            description: label,
            for: { reference: job.subjectKey },
            // Not `focus`: the shipped FHIR mappings search Tasks by focus (OpenCRVS v1 documents).
            reasonReference: { reference: job.sourceRef },
            lastModified: new Date().toISOString(),
          }
        : {
            resourceType: 'DocumentReference',
            id,
            status: 'current',
            identifier,
            type: { text: label },
            subject: { reference: job.subjectKey },
            content: [
              { attachment: { contentType: 'text/plain', data: Buffer.from(job.trackingId).toString('base64') } },
            ],
            context: { related: [{ reference: job.sourceRef }] },
          };
    // PUT to an id of ours: creates the first time, overwrites on a retry (update-as-create).
    await this.client.update(resource, undefined, call);
    return 'written';
  }
}
