import type { PassReport, SourcePipeline } from '../pipeline.js';
import { CachingFetcher } from './fetcher.js';
import type { FhirSourceClient } from './fhir-client.js';

/** What evaluating resources again needs of a FHIR source. */
export interface ReevaluatedSource {
  client: FhirSourceClient;
  pipeline: SourcePipeline;
}

/**
 * Re-reads `changed` and `maybeGone` (a delete notification) and evaluates the subjects they touch, as a
 * poll would. One the server answers 404/410 for, whichever list named it, is gone: unsent rows it was
 * the subject of are withdrawn and those it was the evidence of are evaluated again
 * (SourcePipeline.recordDeleted); one still there counts as changed. `reconciled`: a poll would redo this
 * commit if a power cut lost it (see commit).
 */
export async function reevaluate(
  source: ReevaluatedSource,
  changed: string[],
  maybeGone: string[],
  options: { reconciled?: boolean } = {},
): Promise<PassReport> {
  const fetcher = new CachingFetcher(source.client);
  const readAll = (list: string[]) =>
    Promise.all(
      list.map((ref) => {
        const [type, id] = ref.split('/');
        return type && id ? fetcher.read(type, id) : Promise.resolve(undefined);
      }),
    );
  // Read together, so they leave as one `_id` search per type (CachingFetcher.read); an id the search
  // does not return is read on its own, and only that read's 404/410 counts as gone.
  const refs = [...changed, ...maybeGone];
  const found = await readAll(refs);
  const resources = found.filter((resource) => resource !== undefined);
  // A changed resource that reads as gone was deleted too: a backport id-only notification names what
  // it deleted without saying so, and HAPI without payload says nothing at all.
  const recheck = refs.filter((_, i) => found[i] === undefined).flatMap((ref) => source.pipeline.recordDeleted(ref));
  if (recheck.length > 0) resources.push(...(await readAll(recheck)).filter((resource) => resource !== undefined));
  const { results } = await source.pipeline.evaluate(resources, fetcher);
  return source.pipeline.commit(results, undefined, options);
}
