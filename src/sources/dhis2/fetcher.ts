// Context for DHIS2 mappings: the tracked entities of a poll page are primed (no second read), related
// people (a mother through a relationship) are read by uid, once per pass.
import { type Resource, type ResourceFetcher, trackedEntityResource } from '../../mapping/index.js';
import type { Dhis2Client } from './client.js';

/** Upper bound on cached entities per pass (a page and the people it links to fit many times over). */
const MAX_CACHED = 10_000;

export class Dhis2Fetcher implements ResourceFetcher {
  private readonly cache = new Map<string, Promise<Resource | undefined>>();
  reads = 0;

  constructor(
    private readonly client: Dhis2Client,
    /** The `fields` filter for reads of related tracked entities. */
    private readonly fields: string,
  ) {}

  prime(resources: Resource[]): void {
    for (const resource of resources) {
      if (resource.id) this.cache.set(resource.id, Promise.resolve(resource));
    }
  }

  read(type: string, id: string): Promise<Resource | undefined> {
    if (type !== 'TrackedEntity') return Promise.resolve(undefined);
    let hit = this.cache.get(id);
    if (!hit) {
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.reads++;
      // No program filter: the related person is usually not enrolled in the programme.
      hit = this.client
        .trackedEntity(id, { fields: this.fields })
        .then((te) => (te ? trackedEntityResource(te) : undefined));
      // A failed read is not cached, so the next pass tries again.
      hit.catch(() => this.cache.delete(id));
      this.cache.set(id, hit);
    }
    return hit;
  }

  /** DHIS2 mappings assemble context by reads only (FHIR search parameters mean nothing here). */
  async search(): Promise<Resource[]> {
    return [];
  }
}
