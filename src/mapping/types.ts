// Public types of the mapping layer. Sources (FHIR poller/receiver, DHIS2 poller) and the CLI import
// these through src/mapping/index.ts.

/**
 * A source record as plain JSON: a FHIR resource (any @medplum/fhirtypes Resource fits), or a DHIS2 tracker
 * object with a resourceType we give it. Other elements are read through FHIRPath, never through this type.
 */
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string };
}

/** The same record seen as a JSON object (for the few places that read an element directly). */
export function asJson(resource: Resource): Record<string, unknown> {
  return resource as unknown as Record<string, unknown>;
}

/**
 * Where context comes from. The live poller passes one backed by the FHIR server; `map --input` and tests
 * pass `bundleFetcher(bundle)`. `read` takes a type and an id; for a `urn:uuid:`/`urn:oid:` reference
 * (only found inside bundles) the type is '' and the id is the whole urn, and so for an absolute
 * reference a bundle holds as an entry's fullUrl (see resolveAbsolute).
 */
export interface ResourceFetcher {
  read(type: string, id: string): Promise<Resource | undefined>;
  search(type: string, params: Record<string, string>): Promise<Resource[]>;
  /**
   * How an absolute reference (`https://…/Patient/1`) is read here: the type and id to `read`, when it
   * names a record this fetcher holds (under the FHIR server's own base URL; in a bundle, an entry's
   * fullUrl). Undefined for a record of another server (a mother in a master patient index): it is not
   * followed, since its `Type/id` here would be another record, maybe another person. A fetcher without
   * this method follows no absolute reference.
   */
  resolveAbsolute?(ref: string): { type: string; id: string } | undefined;
  /**
   * Said with the warning about a reference resolveAbsolute left out: how to have it read if its server is
   * this one under another address (a live FHIR source's sources[].alsoKnownAs).
   */
  readonly otherServerHint?: string;
}

export type LocationKind = 'CRVS_OFFICE' | 'HEALTH_FACILITY';

export interface MapOptions {
  /** Turns a configured or source-given location (UUID, externalId, 'Location/uuid') into an OpenCRVS UUID. */
  resolveLocation?: (ref: string, type: LocationKind) => string | undefined;
  /**
   * Looks up locations the record itself names (not the routing table's, resolved at start) so that
   * resolveLocation knows them and their type; one OpenCRVS does not list is no error (resolveLocation
   * then answers undefined). Answers the references OpenCRVS could not be asked about (unreachable, a 5xx,
   * refused credentials): the record is mapped all the same, and what they decide is checked before the
   * row is sent (RoutingResult.facilityUnchecked). Throws only on what is no OpenCRVS failure.
   */
  lookupLocations?: (refs: string[]) => Promise<string[]>;
  /** Set by mapSubject for routing: references lookupLocations could not look up. */
  uncheckedLocations?: ReadonlySet<string>;
  /**
   * What OpenCRVS last answered about a reference it cannot be asked about now (an earlier lookup, an
   * earlier run): its id and type, null for "not listed", undefined when never asked. Routing gives an
   * unchecked facility that answer, so a record read again during an outage maps to the payload it had.
   */
  lastKnownLocation?: (ref: string) => { id: string; locationType: string } | null | undefined;
  /**
   * True while the routing table's references are taken as OpenCRVS last answered, since it cannot be asked
   * (an outage at start-up): the office, and a route's facility, are then marked unchecked in the routing
   * result, and the worker checks them before the row is sent, in whatever process sends it.
   */
  routingUnconfirmed?: () => boolean;
  /** Upper bound on fetcher calls (reads + searches) to assemble one context. Default 50. */
  maxReads?: number;
}

export interface RoutingResult {
  office?: string;
  facility?: string;
  /** The source's own location key that was used or tried first (e.g. 'Location/abc'). */
  sourceLocation?: string;
  /** How the office was chosen, for people reading the dry run and the ledger. */
  via: string;
  /** The record itself named the office (an OpenCRVS v1 Task's), not the routing table. */
  officeFromRecord?: true;
  /**
   * The facility the record itself named (this reference), which OpenCRVS could not be asked about when the
   * record was mapped: `facility` is the reference as given when it is a UUID (what a lookup finds for a
   * location of this deployment), else left out. The worker checks it before the row is sent.
   */
  facilityUnchecked?: string;
  /**
   * The routing table's office reference (routing.defaultOffice, a route's office) when OpenCRVS had not
   * confirmed the table as the record was mapped (MapOptions.routingUnconfirmed): `office` is what it
   * answered last time. The worker looks it up before the row is sent, as for facilityUnchecked.
   */
  officeUnchecked?: string;
}

export type MapResult =
  | {
      status: 'mapped';
      mappingId: string;
      eventType: string;
      subjectRef: string;
      /** The resource whose evidence fired the trigger (often the subject itself). */
      sourceRef: string;
      sourceVersion?: string;
      /** Stable hash of declaration + routing: tells a real change from a re-poll. */
      payloadHash: string;
      /**
       * The hash of the source content the mapping read (fingerprint.ts): the same record mapped otherwise
       * (a new bridge version, a mapping change) keeps it. Set by MappingSet.mapSubjectDetailed; computed
       * on the first call (lazySourceFingerprint), as the ledger needs it on some readings only.
       */
      sourceFingerprint?: () => string;
      /**
       * DHIS2, when other sources of the same server write back: the fingerprint as versions before took it,
       * leaving out the source's own write-back only (fingerprint.ts OwnWrites.ownOnly). Lazy, as above.
       */
      ownOnlyFingerprint?: () => string;
      declaration: Record<string, unknown>;
      /**
       * The event's date as the declaration gives it (the form's dateOfEvent field: child.dob for a birth,
       * eventDetails.date for a death; `YYYY-MM-DD`), else the year or year-month its sources give (a partial
       * date, left out of the declaration): what the source's go-live is compared with (sources/go-live.ts).
       */
      eventDate?: string;
      routing: RoutingResult;
      /** Which trigger rule matched (a label from the mapping file, never data). */
      evidence?: string;
      warnings: string[];
    }
  | { status: 'skipped'; mappingId?: string; eventType?: string; subjectRef?: string; reason: string }
  | {
      status: 'invalid';
      mappingId: string;
      eventType: string;
      subjectRef: string;
      /** The evidence the record was found by (as for a mapped one). */
      sourceRef: string;
      errors: Array<{ field: string; message: string }>;
      /** As for a mapped record (an `invalid` rule's too: a partial date): an old record is skipped, not dead. */
      eventDate?: string;
      /**
       * As for a mapped record, when the mapping read the record and its context: a row whose NOTIFY may be
       * in OpenCRVS counts a change of it as an update after notification (ledger/record.ts). Absent when
       * the context could not be assembled (an expression failed on it) or read (`unreadable`). Lazy, as
       * for a mapped record.
       */
      sourceFingerprint?: () => string;
      /** As for a mapped record (fingerprint.ts OwnWrites.ownOnly). Lazy. */
      ownOnlyFingerprint?: () => string;
      /**
       * Not the mapping's verdict: a record its context needs could not be read from the source (one record
       * it will not serve). Kept as a dead row all the same, replayable once the source serves it.
       */
      unreadable?: true;
    };

export type MappedResult = Extract<MapResult, { status: 'mapped' }>;
