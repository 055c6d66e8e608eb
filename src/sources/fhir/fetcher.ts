import type { Resource } from '@medplum/fhirtypes';
import {
  type BatchableSearch,
  batchableSearches,
  type MappingSet,
  type ResourceFetcher,
  referencesOf,
  splitByReference,
} from '../../mapping/index.js';
import { setBounded } from '../../util/bounded-map.js';
import { type FhirSourceClient, FhirSourceError } from './fhir-client.js';
import { isResourceType } from './notification.js';
import {
  LISTING_OPERATION,
  listingUrl,
  parseListing,
  type RestListing,
  typedRelations,
} from './openmrs-relationships.js';
import {
  LISTING_MAX_RELATIONS,
  listingStart,
  rangeParams,
  relationsOf,
  relationsSearchSubject,
} from './relations-listing.js';
import { type RangeAnswer, RelationsWindow } from './relations-window.js';
import { serverSupportOf } from './server-support.js';
import { LengthMemory, StepMemory } from './step-memory.js';

interface ChunkAnswer {
  search: BatchableSearch;
  byRef: Map<string, Resource[]>;
  keyOf: (ref: string) => string;
}

interface PendingRead {
  resolve(resource: Resource | undefined): void;
  reject(err: unknown): void;
}

/** Sources seen answering an `_id=a,b,…` search with other resources (the filter ignored). */
const ignoresIdLists = new WeakSet<FhirSourceClient>();

/**
 * Sources seen answering one batched reference search (`subject=a,b,…`) with resources of two of the
 * subjects asked: they read the comma list as FHIR's OR, so a subject absent from such an answer has
 * nothing to find. Until then only the subjects an answer names are taken from it: a server that read
 * the list as one literal value (or its first value only) would otherwise make every other subject look
 * as if it had no encounter or observation, and the mapping would go on without them.
 */
const readsOrLists = new WeakSet<FhirSourceClient>();
/** How a refused listing is said (ServerSupport.learn): not as the type's every search. */
const RELATIONS_LISTING_REFUSED = {
  what: 'RelatedPerson listing by _lastUpdated',
  leavesOut:
    "newborns' relations are read from it, as RelatedPerson?patient= is not served either, so births are notified without the mother; RelatedPerson is still polled",
};
/** Sources whose relationships since a birth ran past LISTING_MAX_RELATIONS once (said once per source). */
const listingsCutShort = new WeakSet<FhirSourceClient>();
/** Sources whose REST relationship listing of a child had more than one page once (said once per source). */
const restListingsPaged = new WeakSet<FhirSourceClient>();

/**
 * A failed REST listing said for what it is: the FHIR client's words for a status (a proxy in front of the
 * FHIR server, `baseUrl`) would send the operator to the wrong place. An answer that is no JSON (a login page
 * answered 200) is no listing; the flags the pipeline judges the failure by (one record's, the source's) stay.
 */
function restFailure(err: unknown, notListing: FhirSourceError, sourceId: string): unknown {
  if (!(err instanceof FhirSourceError) || err.status === undefined) return err;
  if (err.status === 200) return notListing;
  const hints: Record<number, string> = {
    401: `the REST API refused the credentials of sources[].auth of source ${sourceId}`,
    403: `the OpenMRS user of source ${sourceId} lacks a privilege the listing needs ("Get Relationships", "Get People"), or a proxy in front of sources[].openmrs.restUrl refused the bridge`,
    404: `no OpenMRS REST relationship resource at sources[].openmrs.restUrl of source ${sourceId} (the REST module missing, or the URL wrong)`,
  };
  const hint = hints[err.status];
  if (!hint) return err;
  return new FhirSourceError(
    `${LISTING_OPERATION} failed: HTTP ${err.status}: ${hint}`,
    err.status,
    err.retryable,
    // Whatever the body: the listing answers an unknown person 200 (an empty `results`), and OpenMRS grants its
    // privileges to a user, not per record, so none of these concerns one birth. A 404 that carries a FHIR
    // OperationOutcome (a restUrl naming the FHIR2 base) was taken for one record's and set every birth aside.
    { foreign: true, retryAfterMs: err.retryAfterMs },
  );
}

/**
 * Each source's own absolute references (ResourceFetcher.resolveAbsolute), its base URLs parsed once: a
 * fetcher lives for one pass, the client for the source.
 */
const ownReferences = new WeakMap<FhirSourceClient, ReturnType<typeof referencesOf>>();

function ownReferencesOf(client: FhirSourceClient): ReturnType<typeof referencesOf> {
  let found = ownReferences.get(client);
  if (!found) {
    found = referencesOf([client.baseUrl, ...(client.settings.alsoKnownAs ?? [])]);
    ownReferences.set(client, found);
  }
  return found;
}

/** Ids per batched read: keeps the query string short (servers cap URLs around 8 KB). */
const PREFETCH_CHUNK = 50;

/**
 * Ids per batched read (`Type?_id=a,b,…&_count=n`), largest first, as PREFETCH_STEPS for the context
 * searches: a slow EMR that does not answer 50 ids within sources[].timeoutMs, or one that refuses them
 * as too long (see REFUSED_AS_TOO_LONG), is asked 10. Past the last step each id is read on its own.
 */
const READ_STEPS = [PREFETCH_CHUNK, 10] as const;

/** How long a step down is kept (readSteps, prefetchSteps). */
const STEP_MEMORY_MS = 60 * 60_000;

/**
 * What a server, or a proxy in front of it, answers a request it will not take for its length: 414 (nginx,
 * Jetty: past their URL limit), 431 (Jetty, Node: the request line and headers together past theirs), 413
 * (older Jetty's "FULL head"), and a 400 that is no FHIR answer (`foreign`: Tomcat's HTML page "Request
 * header is too large" for a request line past maxHttpHeaderSize; see FhirSourceClient). A batch refused
 * so is asked smaller, as one that timed out, and the size is kept for STEP_MEMORY_MS (readSteps,
 * prefetchSteps). A 5xx steps nothing down: the server failing.
 */
const REFUSED_AS_TOO_LONG: readonly number[] = [413, 414, 431];

/**
 * A FHIR server's 400 to a batch (an OperationOutcome; a front's HTML page is REFUSED_AS_TOO_LONG) says no
 * more than "not this request": the list too long (the Microsoft FHIR server's too many parameters; a HAPI
 * deployment refused an `_id` list of about 35 ids so, opensrp/fhircore#2529), no comma list taken for that
 * parameter at all, or one value of the list
 * the server will not take (an id of a form it refuses), which is one record's. So it is not stepped down
 * and kept, which made every record of the source read or searched on its own for an hour for one such
 * value: the batch is asked again in halves (see Bisection), the one value ends up alone, asked on its own
 * as before (its record's own failure), and the other records stay batched. Only a server that refuses
 * lists as such (see Bisection) is remembered so (each record on its own for STEP_MEMORY_MS). A list refused
 * whose two halves are both answered named no value the server refuses (such a value makes the half that
 * names it refused too): its length was, and the half's length is kept for STEP_MEMORY_MS (readLengths,
 * prefetchLengths), so later pages are not refused again. A half that fails otherwise (5xx, no answer in
 * time) or is asked in smaller chunks shows nothing, and nothing is kept from it.
 */
const REFUSED_AS_BAD_REQUEST = 400;

/** The status of a batched call refused as too long (REFUSED_AS_TOO_LONG), else undefined. */
function refusedAsTooLong(err: unknown): number | undefined {
  if (!(err instanceof FhirSourceError) || err.status === undefined) return undefined;
  const tooLong = REFUSED_AS_TOO_LONG.includes(err.status) || (err.status === REFUSED_AS_BAD_REQUEST && err.foreign);
  return tooLong ? err.status : undefined;
}

/**
 * A batched call refused with REFUSED_AS_BAD_REQUEST, and the lists of its values asked since in halves,
 * down to lists of two, whose values are asked alone (as any value a batch left). A list answered shows
 * the server takes lists. A list refused although each of its values answers alone shows it refuses lists
 * as such (or its limit is under two values). Lists refused, however many and at whatever depth, show
 * nothing more: two values the server will not take, one in each half, make both halves refused, and every
 * list of a page refused when every other value is one.
 */
class Bisection {
  private answered = false;
  private refusedThoughEachAnswers = false;

  /** A list of the bisection answered. */
  took(): void {
    this.answered = true;
  }

  get tookAList(): boolean {
    return this.answered;
  }

  /** A list of two refused whose values each answered alone. */
  valuesAnswerAlone(): void {
    this.refusedThoughEachAnswers = true;
  }

  /**
   * No list of the bisection answered, and one refused although each of its values answered alone: the
   * server takes no list for this call, however short.
   */
  get refusesLists(): boolean {
    return !this.answered && this.refusedThoughEachAnswers;
  }
}

/** `values` in two halves, the first the larger; halves of one value are no lists, and asked on their own. */
function halves<T>(values: T[]): [T[], T[]] {
  const middle = Math.ceil(values.length / 2);
  return [values.slice(0, middle), values.slice(middle)];
}

/**
 * Why a batched call is asked smaller: no answer in time, the status it was refused with as too long, or
 * 'lists': lists as such refused with 400 (Bisection.refusesLists).
 */
type StepReason = 'timeout' | 'lists' | number;

/** The step reason of a batched call's failure; undefined for one a smaller call would not mend. */
function stepReasonOf(err: unknown): StepReason | undefined {
  if (err instanceof FhirSourceError && err.timedOut) return 'timeout';
  return refusedAsTooLong(err);
}

/**
 * A batched call's failure is the FHIR server's own 400 (REFUSED_AS_BAD_REQUEST), not a front's page (see
 * REFUSED_AS_TOO_LONG): asked again in halves.
 */
function refusedAsBadRequest(err: unknown): boolean {
  return err instanceof FhirSourceError && err.status === REFUSED_AS_BAD_REQUEST && !err.foreign;
}

/**
 * The step each resource type's batched reads of a source are asked at after one timed out (or was
 * refused as too long), and when:
 * later pages and passes ask that size at once (as prefetchSteps). Bounded: one entry per resource type.
 */
const readSteps = new StepMemory(STEP_MEMORY_MS);

/**
 * The most ids each resource type's batched reads of a source are asked with since the FHIR server refused a
 * longer `_id` list with 400 and answered both its halves (see REFUSED_AS_BAD_REQUEST). Bounded as readSteps.
 */
const readLengths = new LengthMemory(STEP_MEMORY_MS);

/**
 * Subjects per batched context search and the `_count` asked with them, largest first: 50 subjects
 * (the URL bound, as PREFETCH_CHUNK) with room for 10 resources each on a page. A slow EMR may not
 * answer the largest within sources[].timeoutMs, or refuse it as too long; the next step asks a fifth of it
 * (see prefetchQueue). Below the last step each subject runs its own search.
 */
const PREFETCH_STEPS = [
  { subjects: PREFETCH_CHUNK, count: 500 },
  { subjects: 10, count: 100 },
  { subjects: 2, count: 20 },
] as const;

/**
 * The step each batched search (BatchableSearch.key) of a source is asked at after it timed out (or was
 * refused as too long), and when it last stepped down: later pages and passes ask that size at once
 * instead of waiting out the timeout again. One refused at the last step is past it: not batched at all.
 * Forgotten after STEP_MEMORY_MS, so an EMR that was only busy gets the larger searches
 * back. Bounded: one entry per batchable search of the mappings.
 */
const prefetchSteps = new StepMemory(STEP_MEMORY_MS);

/**
 * The most subjects each batched search of a source is asked for since the FHIR server refused a longer list
 * with 400 and answered both its halves (see REFUSED_AS_BAD_REQUEST). Per search shape (BatchableSearch.key),
 * so a limit the server counts in parameters, the search's fixed ones included, is kept for its shape.
 * Bounded as prefetchSteps.
 */
const prefetchLengths = new LengthMemory(STEP_MEMORY_MS);

/** Batched searches in flight at once for one prefetch, unless the source sets maxConcurrentRequests. */
const DEFAULT_PREFETCH_LANES = 8;

/**
 * A list refused with 400 whose two halves, lists both, were asked: `answered` counts those answered whole.
 * Both answered, its length was refused (see REFUSED_AS_BAD_REQUEST).
 */
interface RefusedList {
  values: number;
  answered: number;
}

/**
 * A batched search of these subjects still to ask, at `minStep` or smaller (see stepReasonOf); `halved`: a
 * half of a list refused with 400 (see Bisection); `halfOf`: that list, while this half is asked whole.
 */
interface QueuedChunk {
  search: BatchableSearch;
  refs: string[];
  keyOf: (ref: string) => string;
  minStep: number;
  halved?: Bisection;
  halfOf?: RefusedList;
}

/**
 * `Type?` + the sorted parameters, each value prefixed with its length: unambiguous whatever the
 * values contain, and cheap, since it is built for every cached lookup (6–8 per mapped subject).
 */
function searchKey(type: string, params: Record<string, string>): string {
  let key = `${type}?`;
  for (const name of Object.keys(params).sort()) {
    const value = params[name] ?? '';
    key += `${name}=${value.length}:${value}&`;
  }
  return key;
}

/**
 * The mapping layer's view of a live FHIR source, with a cache that lives for one pass: a birth's
 * mother and encounter are read once even when the child, the encounter and three observations all
 * changed in the same page. `reads` counts server calls (context assembly is bounded per event).
 */
export class CachingFetcher implements ResourceFetcher {
  reads = 0;
  private readonly resources = new Map<string, Promise<Resource | undefined>>();
  private readonly searches = new Map<string, Promise<Resource[]>>();
  /** The pass's RelatedPerson listing (unservedAnswer): at most LISTING_MAX_RELATIONS held. */
  private relations = this.newRelationsWindow();
  /** Each child's OpenMRS REST relationship listing (sources[].openmrs), asked once a pass: typedSearch. */
  private restListings = new Map<string, Promise<RestListing>>();
  private readonly queuedReads = new Map<string, Map<string, PendingRead>>();
  /**
   * The cached searches' keys by resource type, for prime: scanning every cached key for each page
   * cost about 100 ms per 2,000 births. May name keys evicted since (deleting those is a no-op).
   */
  private readonly searchKeysByType = new Map<string, string[]>();
  private flushQueued = false;

  private readonly maxCacheEntries: number;
  private readonly signal: AbortSignal | undefined;

  /**
   * `signal`: ends every call of this fetcher in flight, and its tries, at once, and asks nothing more
   * (a partial evaluation that stopped for the source: SourcePipeline.evaluate's `stop`). What it cut off
   * rejects with its reason, not as a failure of the source or of the record.
   */
  constructor(
    private readonly client: FhirSourceClient,
    options: { signal?: AbortSignal; maxCacheEntries?: number } = {},
  ) {
    // A pass over a backlog touches every resource of its births (a few searches per subject): about
    // 15 entries per birth, so 2,000 births fit. Entries are small (most searches find 0–2 resources).
    this.maxCacheEntries = options.maxCacheEntries ?? 50_000;
    this.signal = options.signal;
  }

  /** The client's answer, or once this fetcher's signal fired, its reason (see the constructor). */
  private settled<T>(call: Promise<T>): Promise<T> {
    const { signal } = this;
    if (!signal) return call;
    return call.catch((err: unknown) => {
      throw signal.aborted ? signal.reason : err;
    });
  }

  /**
   * Seeds the cache with resources already in hand (e.g. the page being processed), and forgets the
   * cached searches over their types: such a search may predate these versions (the EMR wrote them
   * while the pass was running), and the subjects they touch are about to be evaluated again for them.
   */
  prime(resources: Resource[]): void {
    const types = new Set<string>(resources.map((resource) => resource.resourceType));
    for (const type of types) {
      for (const key of this.searchKeysByType.get(type) ?? []) this.searches.delete(key);
      this.searchKeysByType.delete(type);
    }
    if (types.has('RelatedPerson')) {
      this.relations = this.newRelationsWindow();
      this.restListings = new Map();
    }
    for (const resource of resources) {
      if (resource.id)
        this.remember(this.resources, `${resource.resourceType}/${resource.id}`, Promise.resolve(resource));
    }
  }

  /**
   * Reads asked in the same turn of the event loop (the mothers of the births being mapped side by
   * side, say) go out together as one `Type?_id=a,b,…` search (see flushReads). A type that is no FHIR R4
   * resource type (the receiver's check) is read as nothing, without a request, as the mapping reads a
   * `#contained` reference: the type comes from a reference in a record the EMR holds, and the shape the
   * mapping accepts (`Aaaa…(300 kB)/x`, DHIS2's TrackedEntity) would make it `<base>/Aaaa…?_id=x`.
   */
  read(type: string, id: string): Promise<Resource | undefined> {
    if (!isResourceType(type)) return Promise.resolve(undefined);
    const key = `${type}/${id}`;
    let found = this.resources.get(key);
    if (!found) {
      found = new Promise<Resource | undefined>((resolve, reject) => {
        let ids = this.queuedReads.get(type);
        if (!ids) {
          ids = new Map();
          this.queuedReads.set(type, ids);
        }
        ids.set(id, { resolve, reject });
        if (!this.flushQueued) {
          this.flushQueued = true;
          // setImmediate, not a microtask: the other mapping lanes resume in this same check phase
          // and ask their reads before the batch leaves.
          setImmediate(() => this.flushReads());
        }
      });
      this.remember(this.resources, key, found);
    }
    return found;
  }

  /**
   * An absolute reference is read here only under the source's own baseUrl, or a base the EMR writes its
   * own records under too (sources[].alsoKnownAs): another server's `Patient/123` (a master patient index)
   * is not this server's `Patient/123`, and may be another person.
   */
  resolveAbsolute(ref: string): { type: string; id: string } | undefined {
    return ownReferencesOf(this.client)(ref);
  }

  get otherServerHint(): string {
    return `if that is this EMR under another address, add its FHIR base URL to sources[].alsoKnownAs of source ${this.client.settings.id}`;
  }

  search(type: string, params: Record<string, string>): Promise<Resource[]> {
    const key = searchKey(type, params);
    let found = this.searches.get(key);
    if (!found) {
      found = this.settled(this.searchServed(type, params));
      this.rememberSearch(type, key, found);
    }
    const { openmrs } = this.client.settings;
    const childId = openmrs ? relationsSearchSubject(type, params) : undefined;
    return openmrs && childId !== undefined ? this.typedSearch(openmrs.restUrl, childId, found) : found;
  }

  /**
   * A child's RelatedPersons on OpenMRS with `sources[].openmrs`: typed from the REST relationship listing
   * (openmrs-relationships.ts), however they were found (`patient=`, the listing by _lastUpdated, a batch).
   * The listing is asked only for a child with RelatedPersons, once a pass. A listing that fails fails the
   * search, as any context read that fails: the birth waits rather than fall back to the untyped rule, which
   * the site chose this option to be rid of (a clinician linked to the child taken for the mother).
   */
  private async typedSearch(restUrl: string, childId: string, found: Promise<Resource[]>): Promise<Resource[]> {
    const related = await found;
    if (related.length === 0) return related;
    let listing = this.restListings.get(childId);
    if (!listing) {
      listing = this.settled(this.restListing(restUrl, childId));
      this.remember(this.restListings, childId, listing);
    }
    return typedRelations(related, childId, await listing);
  }

  private async restListing(restUrl: string, childId: string): Promise<RestListing> {
    this.reads++;
    const notListing = new FhirSourceError(
      `${LISTING_OPERATION}: the answer is no relationship listing (no JSON \`results\`): check sources[].openmrs.restUrl of source ${this.client.settings.id}`,
      undefined,
      false,
    );
    let body: unknown;
    try {
      body = await this.client.getJson(listingUrl(restUrl, childId), LISTING_OPERATION, {
        timeoutHint: 'raise sources[].timeoutMs',
        signal: this.signal,
      });
    } catch (err) {
      throw restFailure(err, notListing, this.client.settings.id);
    }
    const listing = parseListing(body);
    if (!listing) throw notListing;
    if (listing.more && !restListingsPaged.has(this.client)) {
      restListingsPaged.add(this.client);
      this.client.log.warn(
        { operation: LISTING_OPERATION },
        `the OpenMRS REST API listed a child's relationships over more than one page: only the first is read, and a RelatedPerson of the child not on it is left out (its type unknown) rather than taken as a parent (docs/fhir-sources.md, "OpenMRS")`,
      );
    }
    return listing;
  }

  /**
   * One subject's search, or nothing when the server does not serve it (a type, or parameters, it has no
   * provider for: ServerSupport), as for a search that found nothing. Any other failure is the search's.
   */
  private async searchServed(type: string, params: Record<string, string>): Promise<Resource[]> {
    const support = serverSupportOf(this.client);
    if (await support.notServed(type, params)) return this.unservedAnswer(type, params);
    this.reads++;
    try {
      // poll.pageSize does not set its size.
      return await this.client.searchAll(type, params, {
        timeoutHint: 'raise sources[].timeoutMs',
        signal: this.signal,
      });
    } catch (err) {
      if (support.learn(type, params, err)) return this.unservedAnswer(type, params);
      throw err;
    }
  }

  /**
   * What a search the server does not serve answers: nothing, but for a newborn's `RelatedPerson?patient=`,
   * which is answered from the relationships recorded since the birth (relations-listing.ts: OpenMRS), as
   * the pass holds them (relations-window.ts: whatever order its births come in, each range read once).
   */
  private async unservedAnswer(type: string, params: Record<string, string>): Promise<Resource[]> {
    const patientId = relationsSearchSubject(type, params);
    if (patientId === undefined) return [];
    const subject = await this.read('Patient', patientId);
    const from = listingStart(subject?.resourceType === 'Patient' ? subject.birthDate : undefined, Date.now());
    if (from === undefined) return [];
    const listed = await this.relations.from(from);
    if (listed === 'not served') return [];
    if (listed !== 'past bound') return relationsOf(listed, patientId);
    if (!listingsCutShort.has(this.client)) {
      listingsCutShort.add(this.client);
      // Not the day: it is the day before a child's birth date, which is personal data.
      this.client.log.warn(
        { search: 'RelatedPerson?_lastUpdated' },
        `the FHIR server does not serve RelatedPerson?patient=, and its relationships recorded since a birth run past ${LISTING_MAX_RELATIONS} (read whole or in ranges, the most held for one birth): such births are notified without the mother (docs/fhir-sources.md, "OpenMRS")`,
      );
    }
    return [];
  }

  private newRelationsWindow(): RelationsWindow {
    return new RelationsWindow(
      (from, before, budget) => this.listRelations(from, before, budget),
      LISTING_MAX_RELATIONS,
    );
  }

  /**
   * The relationships recorded from day `from` up to day `before` (none: up to now), read whole within room
   * for `budget` of them, or 'not served' when the server does not serve the listing either. Any other
   * failure is the search's: the birth waits for the server.
   */
  private async listRelations(
    from: string,
    before: string | undefined,
    budget: number,
  ): Promise<RangeAnswer | 'not served'> {
    const support = serverSupportOf(this.client);
    // What the server is known not to serve is a shape: the listing's parameters are all the server's own.
    const shape = { _lastUpdated: `ge${from}` };
    if (await support.notServed('RelatedPerson', shape)) return 'not served';
    const { params, pages } = rangeParams(from, before, budget);
    this.reads++;
    try {
      return await this.client.searchBounded('RelatedPerson', params, pages, {
        timeoutHint: 'raise sources[].timeoutMs',
        signal: this.signal,
      });
    } catch (err) {
      if (support.learn('RelatedPerson', shape, err, RELATIONS_LISTING_REFUSED)) return 'not served';
      throw err;
    }
  }

  /**
   * Asks each batchable context search of these subjects' mappings once per chunk of subjects
   * (`Encounter?subject=Patient/a,Patient/b,…`) and files each subject's share in the cache under the
   * exact key its own search would use, so mapping a page of births costs a handful of searches
   * instead of several per birth. A chunk whose answer is incomplete (more pages than the bound) or
   * fails is left to the per-subject searches, and so is a subject an answer does not name until the
   * server has shown it reads the list as OR (see readsOrLists).
   */
  async prefetch(set: MappingSet, subjects: Array<{ mappingId: string; subjectRef: string }>): Promise<void> {
    const refsByMapping = new Map<string, Set<string>>();
    for (const { mappingId, subjectRef } of subjects) {
      if (!refsByMapping.has(mappingId)) refsByMapping.set(mappingId, new Set());
      refsByMapping.get(mappingId)?.add(subjectRef);
    }
    // The subjects themselves: `Patient?_id=a,b,…` instead of one read each.
    await this.prefetchResources(subjects.map((subject) => subject.subjectRef));
    // One batch per distinct search, over every subject of every mapping that asks it: the birth and
    // death mappings both search `Encounter?subject=…`, and that should cost one request, not two.
    const refsBySearch = new Map<string, { search: BatchableSearch; refs: Set<string> }>();
    for (const [mappingId, refSet] of refsByMapping) {
      for (const search of batchableSearches(set, [mappingId])) {
        const entry = refsBySearch.get(search.key) ?? { search, refs: new Set<string>() };
        for (const ref of refSet) entry.refs.add(ref);
        refsBySearch.set(search.key, entry);
      }
    }
    const queue: QueuedChunk[] = [];
    for (const { search, refs: refSet } of refsBySearch.values()) {
      // Not asked: each subject's search is answered empty without a call (searchServed).
      if (await this.notServed(search)) continue;
      const keyOf = (ref: string) => searchKey(search.type, { ...search.fixed, [search.refParam]: ref });
      const refs = [...refSet].filter((ref) => !this.searches.has(keyOf(ref)));
      if (refs.length > 0) queue.push({ search, refs, keyOf, minStep: 0 });
    }
    const answers = await this.prefetchQueue(queue);
    if (answers.some((answer) => [...answer.byRef.values()].filter((found) => found.length > 0).length >= 2)) {
      readsOrLists.add(this.client);
    }
    const trusted = readsOrLists.has(this.client);
    for (const { search, byRef, keyOf } of answers) {
      for (const [ref, found] of byRef) {
        // An empty share is an answer only from a server known to read the list as OR (see readsOrLists).
        if (trusted || found.length > 0) this.rememberSearch(search.type, keyOf(ref), Promise.resolve(found));
      }
    }
  }

  /**
   * Reads these references into the cache: asked together, they leave as `Type?_id=a,b,…` searches
   * (see read). A failed read is not kept; whoever needs that resource reads it again and sees why.
   */
  async prefetchResources(refs: string[]): Promise<void> {
    await Promise.all(
      refs.map((ref) => {
        const [type, id] = ref.split('/');
        return type && id ? this.read(type, id).catch(() => undefined) : undefined;
      }),
    );
  }

  /**
   * One `_id` search for these ids at this step: what it found, undefined when it failed otherwise (or was
   * not asked), 'smaller' when
   * the source gave no answer in time or refused it as too long (the step down is remembered for the type:
   * see readSteps), 'refused' when it answered 400 (asked in halves: see REFUSED_AS_BAD_REQUEST). Asked
   * once, as a batched context search is: the ids' own reads can do without it. A
   * server that answers with resources it was not asked for ignores `_id` lists: from then on this
   * client's reads go one by one (a page of `ids.length` bounds what finding that out costs).
   */
  private async readBatch(
    type: string,
    ids: string[],
    step: number,
  ): Promise<Map<string, Resource> | 'smaller' | 'refused' | undefined> {
    const found = new Map<string, Resource>();
    if (ignoresIdLists.has(this.client)) return undefined;
    this.reads++;
    let answer: { resources: Resource[] } | undefined;
    try {
      answer = await this.client.searchBounded(type, { _id: ids.join(','), _count: String(ids.length) }, 2, {
        attempts: 1,
        timeoutHint: 'raise sources[].timeoutMs',
        signal: this.signal,
      });
    } catch (err) {
      if (refusedAsBadRequest(err)) return 'refused';
      const reason = stepReasonOf(err);
      if (reason === undefined) return undefined;
      this.readStepDown(type, step, ids.length, reason);
      return 'smaller';
    }
    const wanted = new Set(ids);
    for (const resource of answer.resources) {
      if (resource.resourceType !== type) continue;
      if (!resource.id || !wanted.has(resource.id)) {
        ignoresIdLists.add(this.client);
        return undefined;
      }
      found.set(resource.id, resource);
    }
    // Cut short (a next link): what came is still current; the ids not in it are read one by one.
    return found;
  }

  /**
   * Sends the queued reads: a lone id as a plain read, several as `_id` searches in chunks (see sendReads).
   */
  private flushReads(): void {
    this.flushQueued = false;
    const queued = [...this.queuedReads];
    this.queuedReads.clear();
    for (const [type, pending] of queued) void this.sendReads(type, [...pending.keys()], pending, 0);
  }

  /**
   * Reads these ids in `_id` searches of the size the type's reads are asked at now (at `minStep` or
   * smaller). An id a search did not return (deleted, or a server that ignores `_id` lists) is read on its
   * own, so a batch answers exactly what the single reads would have, errors included. A chunk that times
   * out, or is refused as too long, is asked again one step smaller, down to single reads: chunks asked side
   * by side time out together, so each page waits out the timeout at most once per step, and later pages
   * not at all (readSteps). One refused with 400 is asked again in halves (`halved`: see Bisection).
   * Settles once every chunk, and every chunk asked again for it, is answered or refused (the reads of
   * single ids are not waited for, but those of a list of two refused with 400). Whether the ids were
   * answered as one list, in one call.
   */
  private async sendReads(
    type: string,
    ids: string[],
    pending: Map<string, PendingRead>,
    minStep: number,
    halved?: Bisection,
  ): Promise<boolean> {
    const step = Math.max(this.readStepOf(type), minStep);
    const size = readLengths.capped(this.client, type, READ_STEPS[step] ?? 1);
    const chunks: Array<Promise<boolean>> = [];
    for (let i = 0; i < ids.length; i += size)
      chunks.push(this.sendChunk(type, ids.slice(i, i + size), pending, step, halved));
    const answered = await Promise.all(chunks);
    return answered.length === 1 && answered[0] === true;
  }

  /**
   * One chunk of sendReads: its `_id` search (two ids or more), then each id it did not answer read alone.
   * Whether the search answered.
   */
  private async sendChunk(
    type: string,
    chunk: string[],
    pending: Map<string, PendingRead>,
    step: number,
    halved: Bisection | undefined,
  ): Promise<boolean> {
    const found = chunk.length > 1 ? await this.readBatch(type, chunk, step) : undefined;
    if (found === 'smaller') {
      await this.sendReads(type, chunk, pending, step + 1, halved);
      return false;
    }
    if (found === 'refused') {
      const bisection = halved ?? new Bisection();
      if (chunk.length === 2) {
        // Its values alone, as they would be read anyway, but waited for: their answers tell a value
        // refused from a list refused (see Bisection).
        const alone = await Promise.all(chunk.map((id) => this.readAlone(type, id, pending)));
        if (alone.every(Boolean)) bisection.valuesAnswerAlone();
      } else {
        const parts = halves(chunk);
        const answered = await Promise.all(parts.map((half) => this.sendReads(type, half, pending, step, bisection)));
        // Both answered as lists (a half of one id is no list): no id of the chunk is refused, its length was.
        if (answered.every(Boolean)) this.readLengthRefused(type, chunk.length, parts[0].length);
      }
      // The first list refused: every list of its bisection, and each value of a list of two, is answered
      // or refused by now.
      if (!halved) this.readBisected(type, chunk.length, bisection);
      return false;
    }
    if (chunk.length > 1) halved?.took();
    for (const id of chunk) {
      const resource = found?.get(id);
      if (resource) pending.get(id)?.resolve(resource);
      else void this.readAlone(type, id, pending);
    }
    return found !== undefined;
  }

  /** Reads one queued id on its own and settles its read with the answer; whether the server answered. */
  private async readAlone(type: string, id: string, pending: Map<string, PendingRead>): Promise<boolean> {
    const waiting = pending.get(id);
    if (!waiting) return false;
    this.reads++;
    try {
      waiting.resolve(await this.settled(this.client.read(type, id, { signal: this.signal })));
      return true;
    } catch (err) {
      waiting.reject(err);
      return false;
    }
  }

  /**
   * A batched read of `type` refused with 400 and asked in halves: when the server refused lists as such
   * (Bisection.refusesLists), `type` is read one id at a time from now on (readSteps), as past the last
   * step. Values refused keep nothing: the next batches are asked at their size.
   */
  private readBisected(type: string, ids: number, bisection: Bisection): void {
    if (bisection.refusesLists) this.readStepDown(type, READ_STEPS.length - 1, ids, 'lists');
  }

  /**
   * Remembers that the server refused a read of `ids` ids of `type` with 400 and answered both its halves, of
   * `answered` ids and fewer: its reads of `type` are asked with at most `answered` ids from now on.
   */
  private readLengthRefused(type: string, ids: number, answered: number): void {
    if (!readLengths.limit(this.client, type, answered)) return;
    // The resource type and the sizes only: the ids name patients.
    this.client.log.warn(
      { resourceType: type, ids, nextIds: answered, status: REFUSED_AS_BAD_REQUEST },
      `the FHIR server refused a read of ${ids} ${type} resources by _id with HTTP ${REFUSED_AS_BAD_REQUEST}, and answered each half of it, as too long: ${type} resources are read at most ${answered} at a time for the next hour`,
    );
  }

  /** The step this source's batched reads of `type` are asked at (0 unless one failed so within STEP_MEMORY_MS). */
  private readStepOf(type: string): number {
    return readSteps.stepOf(this.client, type);
  }

  /**
   * Remembers that a batched read of `type` timed out at `step`, or was refused as too long (or as a list,
   * with 400: 'lists', at the last step): they are asked one step smaller from now on.
   */
  private readStepDown(type: string, step: number, ids: number, reason: StepReason): void {
    const next = readSteps.stepDown(this.client, type, step);
    if (next === undefined) return;
    const smaller = READ_STEPS[next];
    const then = smaller ? `${smaller} at a time` : 'one by one';
    // The resource type and the sizes only: the ids name patients.
    const fields = { resourceType: type, ids, nextIds: smaller ?? 1 };
    if (reason === 'timeout')
      this.client.log.warn(
        { ...fields, timeoutMs: this.client.settings.timeoutMs },
        `the FHIR server did not answer a read of ${ids} ${type} resources by _id within sources[].timeoutMs: ${type} resources are read ${then} for the next hour (raise sources[].timeoutMs for fewer calls)`,
      );
    else if (reason === 'lists')
      this.client.log.warn(
        { ...fields, status: REFUSED_AS_BAD_REQUEST },
        `the FHIR server (or a proxy in front of it) refused a read of ${ids} ${type} resources by _id with HTTP ${REFUSED_AS_BAD_REQUEST}, and a list of two of them too although it reads each alone: ${type} resources are read ${then} for the next hour`,
      );
    else
      this.client.log.warn(
        { ...fields, status: reason },
        `the FHIR server (or a proxy in front of it) refused a read of ${ids} ${type} resources by _id with HTTP ${reason}, as too long: ${type} resources are read ${then} for the next hour`,
      );
  }

  /**
   * Asks the queued searches in chunks of the size their search is asked at now (stepOf), a few at once.
   * The size is read when a chunk leaves, not when it was queued: once one search times out, the chunks
   * still waiting go at the smaller size rather than each waiting out the timeout too. A chunk that times
   * out, or is refused as too long, goes back to the queue to be asked in smaller chunks (at most
   * PREFETCH_STEPS.length times); one refused with 400 goes back as its two halves (see Bisection), a half
   * of one subject left to its own search, and when both halves are answered whole their length is kept
   * (prefetchLengths); one that fails otherwise, or at the last step, is left to the
   * per-subject searches, and so is every chunk of a search past the last step (refused at it).
   */
  private async prefetchQueue(queue: QueuedChunk[]): Promise<ChunkAnswer[]> {
    const answers: ChunkAnswer[] = [];
    const bisected: Array<{ search: BatchableSearch; subjects: number; bisection: Bisection }> = [];
    const lane = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const step = Math.max(this.stepOf(item.search), item.minStep);
        const size = PREFETCH_STEPS[step];
        if (!size) continue;
        // A subject's own search found the server does not serve it meanwhile (a 400 "not supported" to a
        // list is halved as any 400: it may refuse the list, not the search): nothing left to ask.
        if (await this.notServed(item.search)) continue;
        const subjects = prefetchLengths.capped(this.client, item.search.key, size.subjects);
        const refs = item.refs.slice(0, subjects);
        // A half asked in parts (the size went down meanwhile) is not answered as a list of its length.
        const halfOf = refs.length === item.refs.length ? item.halfOf : undefined;
        if (item.refs.length > subjects) queue.unshift({ ...item, refs: item.refs.slice(subjects), halfOf: undefined });
        const asked = await this.prefetchChunk(item.search, refs, step);
        if (asked === 'smaller') queue.unshift({ ...item, refs, minStep: step + 1, halfOf });
        else if (asked === 'refused') {
          let { halved } = item;
          if (!halved) {
            halved = new Bisection();
            bisected.push({ search: item.search, subjects: refs.length, bisection: halved });
          }
          if (refs.length === 2) {
            // Once a list was answered nothing is left to learn (see Bisection): each subject is left to
            // its own search, as a subject alone in a half.
            if (!halved.tookAList && (await this.searchedAlone(item.search, refs))) halved.valuesAnswerAlone();
          } else {
            // Halves of two or more both (a half of one subject is no list): both answered, the length was refused.
            const list = refs.length >= 4 ? { values: refs.length, answered: 0 } : undefined;
            for (const half of halves(refs).reverse())
              if (half.length > 1) queue.unshift({ ...item, refs: half, halved, halfOf: list });
          }
        } else if (asked) {
          answers.push({ search: item.search, byRef: asked, keyOf: item.keyOf });
          item.halved?.took();
          if (halfOf && ++halfOf.answered === 2) this.lengthRefused(item.search, halfOf.values);
        }
      }
    };
    // Every lane takes its first chunk before any awaits: one search's many chunks leave side by side.
    const lanes = this.client.settings.maxConcurrentRequests ?? DEFAULT_PREFETCH_LANES;
    await Promise.all(Array.from({ length: lanes }, lane));
    // Every list of each bisection is answered or refused by now.
    for (const { search, subjects, bisection } of bisected)
      if (bisection.refusesLists) this.stepDown(search, PREFETCH_STEPS.length - 1, subjects, 'lists');
    return answers;
  }

  /**
   * Each subject's own search, one after the other, cached for the mapping (which asks it anyway): whether
   * the server answered them all. Stops at the first one that fails: that answers the question, and it is
   * likely its subject's own failure (a value the server will not take), one the mapping may never ask
   * again (its subject failed already) and would not take from the cache (see remember).
   */
  private async searchedAlone(search: BatchableSearch, refs: string[]): Promise<boolean> {
    for (const ref of refs) {
      try {
        await this.search(search.type, { ...search.fixed, [search.refParam]: ref });
      } catch {
        return false;
      }
    }
    // Answered empty because the server does not serve the search at all: that says nothing of lists.
    return !(await this.notServed(search));
  }

  /** Whether the server does not serve this batchable search (ServerSupport): its subjects' searches are empty. */
  private async notServed(search: BatchableSearch): Promise<boolean> {
    const params = { ...search.fixed, [search.refParam]: '' };
    return (await serverSupportOf(this.client).notServed(search.type, params)) !== undefined;
  }

  /**
   * One batched search for these subjects at this step, split by subject; undefined when it failed or was
   * cut short, 'smaller' when the source gave no answer in time, or refused it as too long, and a smaller
   * step remains (the step is remembered for the search), 'refused' when it answered 400 (asked in halves:
   * see REFUSED_AS_BAD_REQUEST). Refused as too long at the last step, the search is past it (see
   * prefetchSteps). Asked once: the per-subject searches can do without it.
   */
  private async prefetchChunk(
    search: BatchableSearch,
    refs: string[],
    step: number,
  ): Promise<Map<string, Resource[]> | 'smaller' | 'refused' | undefined> {
    const size = PREFETCH_STEPS[step];
    if (refs.length < 2 || !size) return undefined; // one subject: its own search is as cheap
    const { count } = size;
    this.reads++;
    const params = { ...search.fixed, [search.refParam]: refs.join(','), _count: String(count) };
    try {
      const answer = await this.client.searchBounded(search.type, params, 4, {
        attempts: 1,
        timeoutHint: 'raise sources[].timeoutMs',
        signal: this.signal,
      });
      return answer.complete ? splitByReference(search, answer.resources, refs) : undefined;
    } catch (err) {
      if (refusedAsBadRequest(err)) return 'refused';
      const reason = stepReasonOf(err);
      const last = step + 1 >= PREFETCH_STEPS.length;
      // A timeout at the last step may be this chunk's records (see the pipeline's slow records); a list of
      // two refused is no URL too long, but a list the server will not take.
      if (reason === undefined || (last && reason === 'timeout')) return undefined;
      this.stepDown(search, step, refs.length, reason);
      return last ? undefined : 'smaller';
    }
  }

  /**
   * Remembers that the server refused this search for `subjects` records with 400 and answered both its
   * halves: it is asked for at most the larger half's records from now on (prefetchLengths).
   */
  private lengthRefused(search: BatchableSearch, subjects: number): void {
    const answered = Math.ceil(subjects / 2); // the larger half (see halves)
    if (!prefetchLengths.limit(this.client, search.key, answered)) return;
    // The resource type and the sizes only: the search's values name patients.
    this.client.log.warn(
      { resourceType: search.type, subjects, nextSubjects: answered, status: REFUSED_AS_BAD_REQUEST },
      `the FHIR server refused a search for the ${search.type} resources of ${subjects} records with HTTP ${REFUSED_AS_BAD_REQUEST}, and answered each half of it, as too long: such searches are asked for at most ${answered} records at a time for the next hour`,
    );
  }

  /** The step this source's batched search is asked at (0 unless it failed so within STEP_MEMORY_MS). */
  private stepOf(search: BatchableSearch): number {
    return prefetchSteps.stepOf(this.client, search.key);
  }

  /**
   * Remembers that this search timed out at `step`, or was refused as too long (or as a list, with 400:
   * 'lists', at the last step): it is asked one step smaller from now on (past the last: each record's own
   * search).
   */
  private stepDown(search: BatchableSearch, step: number, subjects: number, reason: StepReason): void {
    const next = prefetchSteps.stepDown(this.client, search.key, step);
    if (next === undefined) return;
    const smaller = PREFETCH_STEPS[next];
    // The resource type and the sizes only: the search's values name patients.
    const fields = {
      resourceType: search.type,
      subjects,
      count: PREFETCH_STEPS[step]?.count,
      nextSubjects: smaller?.subjects ?? 1,
      nextCount: smaller?.count,
    };
    const then = smaller
      ? `such searches are asked for ${smaller.subjects} records at a time (_count=${smaller.count}) for the next hour`
      : 'such searches are asked for each record on its own for the next hour';
    if (reason === 'timeout')
      this.client.log.warn(
        { ...fields, timeoutMs: this.client.settings.timeoutMs },
        `the FHIR server did not answer a search for the ${search.type} resources of ${subjects} records within sources[].timeoutMs: ${then} (raise sources[].timeoutMs for fewer calls)`,
      );
    else if (reason === 'lists')
      this.client.log.warn(
        { ...fields, count: undefined, status: REFUSED_AS_BAD_REQUEST },
        `the FHIR server (or a proxy in front of it) refused a search for the ${search.type} resources of ${subjects} records with HTTP ${REFUSED_AS_BAD_REQUEST}, and a list of two of them too although it answers each record's own search: ${then}`,
      );
    else
      this.client.log.warn(
        { ...fields, status: reason },
        `the FHIR server (or a proxy in front of it) refused a search for the ${search.type} resources of ${subjects} records with HTTP ${reason}, as too long: ${then}`,
      );
  }

  private rememberSearch(type: string, key: string, value: Promise<Resource[]>): void {
    this.remember(this.searches, key, value);
    let keys = this.searchKeysByType.get(type);
    if (!keys) {
      keys = [];
      this.searchKeysByType.set(type, keys);
    }
    keys.push(key);
    // A type no page primes keeps collecting keys for the whole pass: drop those evicted meanwhile
    // (at twice the cache bound, so the filtering is amortised).
    if (keys.length > 2 * this.maxCacheEntries) {
      this.searchKeysByType.set(
        type,
        keys.filter((k) => this.searches.has(k)),
      );
    }
  }

  /**
   * Caches `value` (bounded, oldest out first; see setBounded).
   */
  private remember<T>(cache: Map<string, Promise<T>>, key: string, value: Promise<T>): void {
    setBounded(cache, key, value, this.maxCacheEntries);
    // A failed read must not stay cached for the rest of the pass (unless a newer one replaced it).
    value.catch(() => {
      if (cache.get(key) === value) cache.delete(key);
    });
  }
}
