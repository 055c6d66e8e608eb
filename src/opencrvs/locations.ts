// Offices and facilities are configured by reference (a location UUID or the country's CSV id, kept
// as `externalId`), because location UUIDs are generated per deployment (docs/opencrvs-api.md, "Calls").
// The resolver turns a reference into the deployment's UUID once and remembers it.
import { isUuid } from '../util/uuid.js';
import { OpenCrvsError } from './errors.js';
import { externalIdMatches } from './locations-v1.js';
import type { Location, OpenCrvsApi } from './types.js';

/** Lookups run at most this many at a time during preload (one id per request is the API's rule). */
const PRELOAD_CONCURRENCY = 4;
/**
 * How long "OpenCRVS lists no such location" is believed. Records name locations themselves (an OpenCRVS v1
 * encounter's facility), and on 1.9 each lookup reads the whole v1 location list: a hospital whose records all
 * name a location OpenCRVS does not list downloaded it for every record. Minutes, not for good: a location added in OpenCRVS is found this soon after.
 */
export const UNLISTED_TTL_MS = 5 * 60_000;
/**
 * How long a location found is believed before OpenCRVS is asked again: an office is closed by setting its
 * `validUntil` (2.0) or its status `inactive` (1.9), and a bridge that runs for months must see it. One
 * lookup per office and hour.
 */
export const FOUND_TTL_MS = 60 * 60_000;
/** After a refresh OpenCRVS could not answer, the cached answer stands this long before it is asked again. */
export const REFRESH_RETRY_MS = 60_000;
/** References remembered as unlisted at most, the oldest forgotten first (they come from records: unbounded). */
export const UNLISTED_MAX = 1_000;

/** References whose last answer is kept (LocationResolver.lastKnown), the oldest forgotten first. */
export const KNOWN_MAX = 5_000;

/** What OpenCRVS last answered about a reference: the location's id and type, or null for "not listed". */
export type KnownLocation = { id: string; locationType: string } | null;

/**
 * Where the resolver keeps its last answers across restarts (the ledger, src/app.ts): what a reference was
 * last found to be is what a mapping most likely gets once OpenCRVS can be asked again. `load`: the one
 * changed longest ago first. `save`: one answer that changed, on its own: another process keeps its answers
 * in the same ledger, and a copy of them all would write this one's older answers over its newer ones.
 */
export interface LocationMemory {
  load(): Iterable<[string, KnownLocation]>;
  save(ref: string, answer: KnownLocation): void;
}

export interface LocationResolverOptions {
  now?: () => number;
  /** Default UNLISTED_TTL_MS. */
  unlistedTtlMs?: number;
  /** Default FOUND_TTL_MS. */
  foundTtlMs?: number;
  /** Default UNLISTED_MAX. */
  unlistedMax?: number;
  /** Keeps lastKnown's answers across restarts; without it they last as long as the process. */
  memory?: LocationMemory;
  /** Default KNOWN_MAX. */
  knownMax?: number;
}

export class LocationResolver {
  private readonly cache = new Map<string, Location>();
  /**
   * When each cached location (by its id: every key of it was answered at once) was last listed by
   * OpenCRVS (elapsed()), or is due to be asked again.
   */
  private readonly foundAt = new Map<string, number>();
  /** The cache's keys for each location id (the id, its externalId, each form a reference took): one answer updates them all. */
  private readonly keysOf = new Map<string, Set<string>>();
  private readonly foundTtlMs: number;
  private readonly inflight = new Map<string, Promise<Location>>();
  /** References OpenCRVS answered it does not list, until when that answer is believed (insertion order). */
  private readonly unlisted = new Map<string, number>();
  /** The wall clock: what a location's `validUntil` is compared with. */
  private readonly now: () => number;
  /** For how long answers are believed: monotonic, so a clock put back cannot keep an answer for good. */
  private readonly elapsed: () => number;
  private readonly unlistedTtlMs: number;
  private readonly unlistedMax: number;
  /** The last answer about each reference, kept past UNLISTED_TTL_MS and across restarts (insertion order). */
  private readonly known = new Map<string, KnownLocation>();
  private readonly knownMax: number;
  private readonly memory: LocationMemory | undefined;

  constructor(
    private readonly api: OpenCrvsApi,
    options: LocationResolverOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.elapsed = options.now ?? (() => performance.now());
    this.unlistedTtlMs = options.unlistedTtlMs ?? UNLISTED_TTL_MS;
    this.foundTtlMs = options.foundTtlMs ?? FOUND_TTL_MS;
    this.unlistedMax = Math.max(1, options.unlistedMax ?? UNLISTED_MAX);
    this.knownMax = Math.max(1, options.knownMax ?? KNOWN_MAX);
    this.memory = options.memory;
    for (const [ref, answer] of this.memory?.load() ?? []) this.remember(ref, answer, false);
  }

  /**
   * What OpenCRVS last answered about a reference, however long ago (an earlier run's answer too):
   * undefined when it was never asked. Not a lookup: while OpenCRVS cannot be asked, it says what the
   * answer most likely is, so that a record mapped meanwhile gives the payload a lookup would.
   */
  lastKnown(ref: string): KnownLocation | undefined {
    const found = this.cache.get(ref);
    return found ? { id: found.id, locationType: found.locationType } : this.known.get(ref);
  }

  /**
   * ref = UUID or externalId; expectedType e.g. CRVS_OFFICE or HEALTH_FACILITY. A location found is
   * remembered for FOUND_TTL_MS and then asked about again (an office can close), kept as it was while
   * OpenCRVS cannot be asked; one not listed for UNLISTED_TTL_MS. `fresh` asks OpenCRVS again at once.
   * A closed office (closedOn) is refused like one not listed: OpenCRVS still takes its id (2.0 any
   * location, 1.9 any leaf), and the record would wait in the queue of an office nobody works in.
   * `signal`: the caller gave up waiting; a lookup of its own is cut off then.
   */
  async resolve(
    ref: string,
    expectedType?: string,
    options: { fresh?: boolean; closedToo?: boolean; signal?: AbortSignal } = {},
  ): Promise<Location> {
    const location = await this.found(ref, options.fresh === true, options.signal);
    if (expectedType && location.locationType !== expectedType) {
      throw unknown(ref, `is a ${location.locationType}, not a ${expectedType}`);
    }
    const closed = options.closedToo ? undefined : this.closedOn(location);
    if (closed) throw unknown(ref, `is an office OpenCRVS ${closed}`);
    return location;
  }

  /** Whether the reference is, as last answered, an office OpenCRVS has closed (no lookup). */
  closedSync(ref: string): boolean {
    const location = this.cache.get(ref);
    return location !== undefined && this.closedOn(location) !== undefined;
  }

  /**
   * How the office with this UUID was closed, in words (closedOn), else undefined: open, not an office, or
   * not listed (a refusal that is OpenCRVS's to give). Asks OpenCRVS as resolve does; throws when it
   * cannot be asked about an office never found.
   */
  async officeClosedOn(id: string): Promise<string | undefined> {
    try {
      return this.closedOn(await this.found(id, false));
    } catch (err) {
      if (isNotListed(err)) return undefined;
      throw err;
    }
  }

  /**
   * How an office was closed, to follow "OpenCRVS" or "an office OpenCRVS" in a message: `closed on <date>
   * (its validUntil)` once 2.0's `validUntil` has passed, `deactivated (its status is inactive; …)` for 1.9,
   * which keeps no date of it. Else undefined. Health facilities are never closed here: a birth in a
   * facility since closed still happened there.
   */
  private closedOn(location: Location): string | undefined {
    if (location.locationType !== 'CRVS_OFFICE') return undefined;
    if (location.deactivated) return 'deactivated (its status is inactive; OpenCRVS 1.9 keeps no date of it)';
    if (!location.validUntil) return undefined;
    const until = Date.parse(location.validUntil);
    return Number.isFinite(until) && until <= this.now()
      ? `closed on ${location.validUntil} (its validUntil)`
      : undefined;
  }

  /**
   * A location from the cache while FOUND_TTL_MS has not passed, else from OpenCRVS. While OpenCRVS cannot
   * answer, the cached one stands, and is asked about again only REFRESH_RETRY_MS later: every row sent
   * would otherwise wait out a lookup's timeout first.
   */
  private async found(ref: string, fresh: boolean, signal?: AbortSignal): Promise<Location> {
    const cached = this.cache.get(ref);
    if (cached && !fresh && this.elapsed() - (this.foundAt.get(cached.id) ?? 0) < this.foundTtlMs) return cached;
    try {
      return await this.lookupOnce(ref, fresh || cached !== undefined, signal);
    } catch (err) {
      const notListed = err instanceof OpenCrvsError && err.kind === 'unknown-office';
      if (cached && notListed) this.forget(ref, cached);
      if (!cached || notListed) throw err;
      this.foundAt.set(cached.id, this.elapsed() - this.foundTtlMs + REFRESH_RETRY_MS);
      return cached; // what OpenCRVS said an hour ago still stands
    }
  }

  private forget(ref: string, location: Location): void {
    for (const key of [ref, location.id, ...(this.keysOf.get(location.id) ?? [])]) this.cache.delete(key);
    this.keysOf.delete(location.id);
    this.foundAt.delete(location.id);
  }

  /**
   * Resolves many references (to use resolveSync afterwards); reports every unknown one at once. `signal`:
   * the caller gave up waiting (a sync pass's deadline): the lookups in flight are cut off, none is begun.
   */
  async preload(refs: Array<{ ref: string; type?: string; key?: string }>, signal?: AbortSignal): Promise<void> {
    const unknownRefs: string[] = [];
    for (let i = 0; i < refs.length; i += PRELOAD_CONCURRENCY) {
      signal?.throwIfAborted();
      const batch = refs.slice(i, i + PRELOAD_CONCURRENCY);
      // The routing table is the operator's: an office added in OpenCRVS after a failed start is found by
      // the next try (at most 30 s later), not UNLISTED_TTL_MS later.
      const results = await Promise.allSettled(
        batch.map((item) => this.resolve(item.ref, item.type, { fresh: true, signal })),
      );
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
    if (!location || (expectedType && location.locationType !== expectedType)) return undefined;
    return this.closedOn(location) ? undefined : location.id;
  }

  /**
   * Looks references up so that resolveSync knows them, whatever their type. One OpenCRVS does not list
   * is left out (resolveSync answers undefined; OpenCRVS is asked again once UNLISTED_TTL_MS has passed:
   * it may have been added). Answers the references OpenCRVS could not be asked about (unreachable, a 5xx,
   * refused credentials: any OpenCrvsError but "not listed"), for the caller to treat as unchecked.
   * `signal`: the caller stopped waiting (the bridge stopping, a sync pass's deadline): the references not
   * answered by then are among those. Each lookup is shared by every caller of the reference (the records
   * of one page name the same facility), so it is not cut off: it runs on within opencrvs.timeoutMs.
   */
  async lookUp(refs: string[], signal?: AbortSignal): Promise<string[]> {
    const unanswered: string[] = [];
    await Promise.all(
      refs.map((ref) =>
        unlessGivenUp(this.resolve(ref), signal).catch((err: unknown) => {
          if (!(err instanceof OpenCrvsError)) throw err;
          if (!isNotListed(err)) unanswered.push(ref);
        }),
      ),
    );
    return unanswered;
  }

  private lookupOnce(ref: string, fresh: boolean, signal?: AbortSignal): Promise<Location> {
    const until = this.unlisted.get(ref);
    if (until !== undefined) {
      if (!fresh && this.elapsed() < until) return Promise.reject(notListed(ref));
      this.unlisted.delete(ref);
    }
    // A caller that may give up asks on its own: cutting off a lookup others wait for would fail theirs too.
    if (signal) return this.lookup(ref, signal);
    let pending = this.inflight.get(ref);
    if (!pending) {
      pending = this.lookup(ref).finally(() => this.inflight.delete(ref));
      this.inflight.set(ref, pending);
    }
    return pending;
  }

  private async lookup(ref: string, signal?: AbortSignal): Promise<Location> {
    // A UUID is tried as an id first; a country could still use UUID-shaped CSV ids. 1.9 answers any query
    // with its whole v1 location list (filtered here): one download answers both questions.
    const byId = (list: Location[]) => (isUuid(ref) ? list.find((l) => l.id === ref) : undefined);
    const byExternalId = (list: Location[]) => list.find((l) => externalIdMatches(l.externalId, ref));
    let found: Location | undefined;
    if (this.api.version === '1.9') {
      const all = await this.api.listLocations({}, { signal });
      found = byId(all) ?? byExternalId(all);
    } else {
      found = isUuid(ref) ? byId(await this.api.listLocations({ id: ref }, { signal })) : undefined;
      found ??= byExternalId(await this.api.listLocations({ externalId: ref }, { signal }));
    }
    if (!found) {
      // Oldest first: with one lifetime for all, the first inserted is the first to run out.
      const oldest = this.unlisted.size >= this.unlistedMax ? this.unlisted.keys().next() : undefined;
      if (oldest && !oldest.done) this.unlisted.delete(oldest.value);
      this.unlisted.set(ref, this.elapsed() + this.unlistedTtlMs);
      this.remember(ref, null);
      throw notListed(ref);
    }
    // Every key of this location gets the answer: a refresh asked by id (the worker's) must reach the
    // externalId the routing table names, which resolveSync reads when mapping.
    const before = this.cache.get(ref);
    if (before && before.id !== found.id) this.keysOf.get(before.id)?.delete(ref); // set up again: another id
    const keys = this.keysOf.get(found.id) ?? new Set<string>();
    keys.add(ref).add(found.id);
    this.keysOf.set(found.id, keys);
    for (const key of keys) this.cache.set(key, found);
    this.foundAt.set(found.id, this.elapsed());
    this.remember(ref, { id: found.id, locationType: found.locationType });
    return found;
  }

  /** Keeps an answer for lastKnown; saved only when it is news (a repeated answer writes nothing). */
  private remember(ref: string, answer: KnownLocation, save = true): void {
    const before = this.known.get(ref);
    const same =
      before !== undefined &&
      (before === null || answer === null
        ? before === answer
        : before.id === answer.id && before.locationType === answer.locationType);
    if (same) return;
    this.known.delete(ref);
    if (this.known.size >= this.knownMax) {
      const oldest = this.known.keys().next();
      if (!oldest.done) this.known.delete(oldest.value);
    }
    this.known.set(ref, answer);
    if (save) this.memory?.save(ref, answer);
  }
}

/** `lookup`, unless `signal` fires first: then a failure to ask OpenCRVS (the lookup goes on for others). */
function unlessGivenUp<T>(lookup: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return lookup;
  return new Promise<T>((resolve, reject) => {
    const gaveUp = () =>
      reject(
        new OpenCrvsError({
          kind: 'network',
          classification: 'retryable',
          message: 'cut off: the caller stopped waiting for the answer',
          operation: 'resolveLocation',
        }),
      );
    if (signal.aborted) gaveUp();
    else signal.addEventListener('abort', gaveUp, { once: true });
    lookup.then(resolve, reject).finally(() => signal.removeEventListener('abort', gaveUp));
  });
}

/**
 * Whether `err` is the resolver's own answer that a reference is no location of this deployment (of the
 * type asked, or open), not a failure to ask OpenCRVS.
 */
export function isNotListed(err: unknown): boolean {
  return err instanceof OpenCrvsError && err.kind === 'unknown-office' && err.operation === 'resolveLocation';
}

function notListed(ref: string): OpenCrvsError {
  return unknown(ref, 'is not a location of this OpenCRVS deployment');
}

function unknown(ref: string, why: string): OpenCrvsError {
  return new OpenCrvsError({
    kind: 'unknown-office',
    classification: 'operator',
    message: `location ${ref} ${why}`,
    operation: 'resolveLocation',
  });
}
