// Context for DHIS2 mappings: the tracked entities of a poll page are primed (no second read), related
// people (a mother through a relationship) are read by uid, once per pass.
import { type Resource, type ResourceFetcher, trackedEntityResource } from '../../mapping/index.js';
import { setBounded } from '../../util/bounded-map.js';
import type { Dhis2Client } from './client.js';

/** Upper bound on cached entities per pass (a page and the people it links to fit many times over). */
export const MAX_CACHED = 10_000;

export class Dhis2Fetcher implements ResourceFetcher {
  private readonly cache = new Map<string, Promise<Resource | undefined>>();
  reads = 0;

  private readonly signal: AbortSignal | undefined;

  /**
   * `fields`: the `fields` filter for reads of related tracked entities. `signal`: ends every read of this
   * fetcher in flight, and its tries, at once, and asks nothing more (a partial evaluation that stopped for
   * the source: SourcePipeline.evaluate's `stop`). What it cut off rejects with its reason, not as a failure
   * of the source or of the record (as the FHIR CachingFetcher).
   */
  constructor(
    private readonly client: Dhis2Client,
    private readonly fields: string,
    options: { signal?: AbortSignal } = {},
  ) {
    this.signal = options.signal;
  }

  /**
   * The page's entities, so a mapping reading one of them costs no call. Bounded like reads (oldest out
   * first): a first sync of a large programme primes a million entities in one pass.
   */
  prime(resources: Resource[]): void {
    for (const resource of resources) {
      if (resource.id) setBounded(this.cache, resource.id, Promise.resolve(resource), MAX_CACHED);
    }
  }

  read(type: string, id: string): Promise<Resource | undefined> {
    if (type !== 'TrackedEntity') return Promise.resolve(undefined);
    let hit = this.cache.get(id);
    if (!hit) {
      this.reads++;
      // No program filter: the related person is usually not enrolled in the programme.
      const { signal } = this;
      hit = this.client.trackedEntity(id, { fields: this.fields }, { signal }).then(
        (te) => (te ? trackedEntityResource(te) : undefined),
        (err: unknown) => {
          throw signal?.aborted ? signal.reason : err;
        },
      );
      // A failed read is not cached, so the next pass tries again.
      hit.catch(() => this.cache.delete(id));
      setBounded(this.cache, id, hit, MAX_CACHED);
    }
    return hit;
  }

  /** DHIS2 mappings assemble context by reads only (FHIR search parameters mean nothing here). */
  async search(): Promise<Resource[]> {
    return [];
  }
}
