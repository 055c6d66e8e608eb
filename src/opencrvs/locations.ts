// Offices and facilities are configured by reference (a location UUID or the country's CSV id, kept
// as `externalId`), because location UUIDs are generated per deployment (docs/opencrvs-api.md §3.5).
// The resolver turns a reference into the deployment's UUID once and remembers it.
import { OpenCrvsError } from './errors.js';
import { externalIdMatches } from './locations-v1.js';
import type { Location, OpenCrvsApi } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Lookups run at most this many at a time during preload (one id per request is the API's rule). */
const PRELOAD_CONCURRENCY = 4;

export class LocationResolver {
  private readonly cache = new Map<string, Location>();
  private readonly inflight = new Map<string, Promise<Location>>();

  constructor(private readonly api: OpenCrvsApi) {}

  /** ref = UUID or externalId; expectedType e.g. CRVS_OFFICE or HEALTH_FACILITY. */
  async resolve(ref: string, expectedType?: string): Promise<Location> {
    const cached = this.cache.get(ref);
    const location = cached ?? (await this.lookupOnce(ref));
    if (expectedType && location.locationType !== expectedType) {
      throw unknown(ref, `is a ${location.locationType}, not a ${expectedType}`);
    }
    return location;
  }

  /** Resolves many references (to use resolveSync afterwards); reports every unknown one at once. */
  async preload(refs: Array<{ ref: string; type?: string; key?: string }>): Promise<void> {
    const unknownRefs: string[] = [];
    for (let i = 0; i < refs.length; i += PRELOAD_CONCURRENCY) {
      const batch = refs.slice(i, i + PRELOAD_CONCURRENCY);
      const results = await Promise.allSettled(batch.map((item) => this.resolve(item.ref, item.type)));
      for (const [j, result] of results.entries()) {
        if (result.status === 'fulfilled') continue;
        const err: unknown = result.reason;
        // `key` names where the reference came from (routing.defaultOffice…): what the operator fixes.
        const key = batch[j]?.key;
        if (err instanceof OpenCrvsError && err.kind === 'unknown-office')
          unknownRefs.push(key ? `${key}: ${err.opencrvsMessage}` : err.opencrvsMessage);
        else throw err;
      }
    }
    if (unknownRefs.length > 0) {
      throw new OpenCrvsError({
        kind: 'unknown-office',
        classification: 'operator',
        message: unknownRefs.join('; '),
        operation: 'resolveLocation',
      });
    }
  }

  /** The location UUID for a reference resolved before (of that type, when given), else undefined. */
  resolveSync(ref: string, expectedType?: string): string | undefined {
    const location = this.cache.get(ref);
    if (expectedType && location?.locationType !== expectedType) return undefined;
    return location?.id;
  }

  /**
   * Looks references up so that resolveSync knows them, whatever their type. One OpenCRVS does not list
   * is left out (resolveSync answers undefined, and it is asked again next time: it may be added); a
   * failed lookup (OpenCRVS unreachable) throws.
   */
  async lookUp(refs: string[]): Promise<void> {
    await Promise.all(
      refs.map((ref) =>
        this.resolve(ref).catch((err: unknown) => {
          if (!(err instanceof OpenCrvsError && err.kind === 'unknown-office' && err.operation === 'resolveLocation'))
            throw err;
        }),
      ),
    );
  }

  private lookupOnce(ref: string): Promise<Location> {
    let pending = this.inflight.get(ref);
    if (!pending) {
      pending = this.lookup(ref).finally(() => this.inflight.delete(ref));
      this.inflight.set(ref, pending);
    }
    return pending;
  }

  private async lookup(ref: string): Promise<Location> {
    // A UUID is tried as an id first; a country could still use UUID-shaped CSV ids.
    let found = UUID.test(ref) ? (await this.api.listLocations({ id: ref })).find((l) => l.id === ref) : undefined;
    found ??= (await this.api.listLocations({ externalId: ref })).find((l) => externalIdMatches(l.externalId, ref));
    if (!found) throw unknown(ref, 'is not a location of this OpenCRVS deployment');
    this.cache.set(ref, found);
    this.cache.set(found.id, found);
    return found;
  }
}

function unknown(ref: string, why: string): OpenCrvsError {
  return new OpenCrvsError({
    kind: 'unknown-office',
    classification: 'operator',
    message: `location ${ref} ${why}`,
    operation: 'resolveLocation',
  });
}
