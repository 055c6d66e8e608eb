import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Resource } from '../../mapping/index.js';
import { addReports, type Evaluation, emptyReport, type PassReport, type SourcePipeline } from '../pipeline.js';
import { failureToThrow } from '../shared/source-error.js';
import { CachingFetcher } from './fetcher.js';
import type { FhirSourceClient } from './fhir-client.js';

/** What evaluating resources again needs of a FHIR source. */
export interface ReevaluatedSource {
  client: FhirSourceClient;
  pipeline: SourcePipeline;
}

export interface ReevaluateOptions {
  /** A poll would redo this commit if a power cut lost it (see commitInSteps). */
  reconciled?: boolean;
  /** Each failure the call throws for, and the resource or subject it concerns (see reevaluate). */
  onFailure?: (ref: string, error: unknown) => void;
  /**
   * False when `refs` are the subjects of rows to check (a recheck, a replay), not records that changed:
   * the rows that read them as context are not mapped with them (SourcePipeline.evaluate `readers`).
   */
  readers?: boolean;
  /**
   * The source's go-live (poll.since, sinceDays), for a notification: a resource it names (or a deletion
   * brings back) whose `meta.lastUpdated` is before `notBefore`, or that has none, is left out, as a pass's
   * `_lastUpdated=ge…` search never reads it, unless the ledger already `holds` a row naming it (the go-live
   * keeps out records the bridge never took up, not those it did). Without it a notification naming a
   * record from before the go-live (forged, or an EMR resending old ones) had it sent: the duplicate of a
   * paper registration the go-live exists to prevent. `leftOut` hears how many were left out.
   */
  goLive?: { notBefore: number; holds: (ref: string) => boolean; leftOut?: (count: number) => void };
  /**
   * Refs to act on only if they read as gone (a deletion named outside a notification's signature): one
   * that still reads is not evaluated (no deletion, and no change anyone vouched for), and `stillThere`
   * hears of it.
   */
  deletionsOnly?: { refs: ReadonlySet<string>; stillThere: (ref: string) => void };
}

/**
 * Re-reads the resources `refs` name (changed, or deleted: a notification is only a hint) and evaluates
 * the subjects they touch, as a poll would. One the server answers 404/410 for is gone, whatever the
 * notification said (a backport id-only one names a deletion like any change): unsent rows it was the
 * subject of are withdrawn, and those it was the evidence of, the records its last version (from the
 * source's history) was about, and (unless `readers: false`) those of the rows that read it as context (the
 * mother's Patient, the maternity encounter) are evaluated again (SourcePipeline.recordDeleted). `reconciled`: a poll would redo this commit if a power cut lost it.
 *
 * A read that fails (a 5xx the client's retries did not get past) leaves out that resource only, and a
 * subject whose context reads fail (a search that timed out, a 429, a connection reset) that subject only:
 * what the other reads show is evaluated and committed, then the failure is thrown (one the source did not
 * answer itself, a proxy's page, before any other: SourceCallError.foreign). The caller redoes or falls back
 * for the unread ones alone: the worker's recheck sends only their rows as recorded (delivery/worker.ts),
 * where before a birth the EMR had entered in error went out beside a neighbour whose read failed.
 * `onFailure` hears, before the throw, of every failure it is thrown for, with the reference it concerns:
 * the resource whose read failed, or the subject whose evaluation did (its context reads).
 */
export async function reevaluate(
  source: ReevaluatedSource,
  refs: string[],
  options: ReevaluateOptions = {},
): Promise<PassReport> {
  // Aborted when the evaluation stops for the source: the reads under way end then too.
  const stop = new AbortController();
  const fetcher = source.pipeline.reading(new CachingFetcher(source.client, { signal: stop.signal }));
  try {
    return await evaluateRefs(source, fetcher, refs, stop, options);
  } finally {
    await source.pipeline.finished(fetcher);
  }
}

async function evaluateRefs(
  source: ReevaluatedSource,
  fetcher: CachingFetcher,
  refs: string[],
  stop: AbortController,
  options: ReevaluateOptions,
): Promise<PassReport> {
  const failures: unknown[] = [];
  const failed = (ref: string, error: unknown) => {
    failures.push(error);
    options.onFailure?.(ref, error);
  };
  // Each read's resource, undefined when gone, UNREAD when it failed (kept in `failures`).
  const readAll = (list: string[]) =>
    Promise.all(
      list.map((ref) =>
        byRef(ref, (type, id) => fetcher.read(type, id)).catch((err: unknown): typeof UNREAD => {
          failed(ref, err);
          return UNREAD;
        }),
      ),
    );
  const isResource = (found: Resource | undefined | typeof UNREAD): found is Resource =>
    found !== undefined && found !== UNREAD;
  // Read together, so they leave as one `_id` search per type (CachingFetcher.read); an id the search
  // does not return is read on its own, and only that read's 404/410 counts as gone.
  const found = await readAll(refs);
  const resources = found.filter((resource, i): resource is Resource => {
    if (!isResource(resource)) return false;
    const ref = refs[i] ?? '';
    if (!options.deletionsOnly?.refs.has(ref)) return true;
    options.deletionsOnly.stillThere(ref);
    return false;
  });
  const gone = refs.filter((_, i) => found[i] === undefined);
  // The last version of each, to find the records it was about (a fetal-death report's child, say). A server
  // that keeps no history gives none (OpenMRS); one that cannot answer now gives none either (logged): the
  // deletion itself is recorded all the same, and only rows that name the resource are evaluated again.
  const lastVersions = await Promise.all(
    gone.map((ref) => byRef(ref, (type, id) => source.client.lastVersion(type, id))),
  );
  // Each deletion is its own durable transaction (an fsync) and a ledger search: a replay of thousands of
  // rows whose records are gone held the event loop for up to 570 ms per batch of 50, /healthz and
  // senders' acknowledgements waiting. A turn of the loop between them; each one is whole in itself (its
  // rows, its order marks), so what runs in between is no more than another evaluation committing.
  const recheck: string[] = [];
  for (const [i, ref] of gone.entries()) {
    if (i > 0) await nextTurn();
    recheck.push(
      ...source.pipeline.recordDeleted(ref, fetcher, lastVersions[i], { readers: options.readers !== false }),
    );
  }
  if (recheck.length > 0) resources.push(...(await readAll(recheck)).filter(isResource));
  const evaluated = await source.pipeline.evaluate(sinceGoLive(resources, options.goLive), fetcher, undefined, {
    partial: true,
    stop,
    readers: options.readers !== false,
  });
  for (const { subjectRef, error } of evaluated.failures ?? []) failed(subjectRef, error);
  const report = await commitInSteps(source, evaluated.results, options);
  if (failures.length > 0) throw failureToThrow(failures);
  return report;
}

async function commitInSteps(
  source: ReevaluatedSource,
  results: Evaluation[],
  options: ReevaluateOptions,
): Promise<PassReport> {
  if (!options.reconciled) return source.pipeline.commit(results, undefined, options);
  // Without an fsync a commit is cheap, and a batch of 50 in one commit held the event loop for up to
  // 17 ms while senders waited for their acknowledgement: small commits with a turn of the loop between.
  // Each result is a row of its own, so a crash between them only leaves the rest to the next reading.
  const report = emptyReport();
  for (let at = 0; at === 0 || at < results.length; at += RECONCILED_COMMIT_ROWS) {
    if (at > 0) await nextTurn();
    addReports(report, source.pipeline.commit(results.slice(at, at + RECONCILED_COMMIT_ROWS), undefined, options));
  }
  return report;
}

const RECONCILED_COMMIT_ROWS = 8;

/** `resources` less those before the go-live that the ledger does not hold (ReevaluateOptions.goLive). */
function sinceGoLive(resources: Resource[], goLive: ReevaluateOptions['goLive']): Resource[] {
  if (!goLive) return resources;
  const kept = resources.filter((resource) => {
    const at = Date.parse(resource.meta?.lastUpdated ?? '');
    return at >= goLive.notBefore || goLive.holds(`${resource.resourceType}/${resource.id}`);
  });
  if (kept.length < resources.length) goLive.leftOut?.(resources.length - kept.length);
  return kept;
}

/** A read that failed (readAll): neither a resource nor gone. */
const UNREAD = Symbol('unread');

/** `read` of a `Type/id` reference; undefined for anything else (a notification names what it likes). */
function byRef(ref: string, read: (type: string, id: string) => Promise<Resource | undefined>) {
  const [type, id] = ref.split('/');
  return type && id ? read(type, id) : Promise.resolve(undefined);
}
