// What a FHIR source's server does not serve, so that a mapping's context search of it is taken as empty
// instead of failing every record. OpenMRS FHIR2 has no Composition provider (a 404), and its Observation and
// RelatedPerson searches take no `focus` and no `patient` (a 400): the shipped mappings ask for all three,
// for the EMRs that have them, and every Patient became a dead row there. Two ways to know:
//   - the server's CapabilityStatement, read once per source (one try, within METADATA_TIMEOUT_MS; kept for
//     STATEMENT_TTL_MS, or FAILED_TTL_MS when it could not be read): a resource type it does not list, while
//     it lists others, is not asked for at all. Its search parameters are not judged: servers often leave
//     some out, and a search skipped on a statement's gap would drop what the record holds;
//   - the server's own answer to a search: an OperationOutcome that says so (FhirSourceError.notSupported),
//     remembered for the life of the client, at most MAX_LEARNED shapes.
// Anything else (a 5xx, no answer in time, a proxy's page, a 400 about a value) still fails as before: a
// birth is never mapped from a context cut short by an outage.
import { type CapabilitySummary, summarizeCapabilities } from './capability.js';
import { type FhirSourceClient, FhirSourceError } from './fhir-client.js';

const STATEMENT_TTL_MS = 60 * 60_000;
const FAILED_TTL_MS = 5 * 60_000;
/**
 * Each read of the statement is one try of at most this long (or `sources[].timeoutMs`, if shorter). A pass
 * waits for it before its first context search and before polling a linked type, and a server that never
 * answers /metadata was asked again every FAILED_TTL_MS with the client's three tries of its full timeout:
 * about 46 s with the defaults, held by a pass each time. Nothing needs the statement: without it every
 * search is asked, and one refused as not supported is learned from its answer.
 */
export const METADATA_TIMEOUT_MS = 10_000;
/** Shapes learned per source: the mappings declare a handful of searches, so this bound is never met in use. */
const MAX_LEARNED = 64;

/** The names of a search's own parameters, a modifier or chain cut off; `_count`, `_sort`… are the server's. */
function paramNames(params: Record<string, string>): string[] {
  const names = Object.keys(params)
    .map((name) => name.split(/[:.]/)[0] ?? name)
    .filter((name) => !name.startsWith('_'));
  return [...new Set(names)].sort();
}

function shapeKey(type: string, params: Record<string, string>): string {
  return `${type}?${paramNames(params).join('&')}`;
}

export class ServerSupport {
  private statement: { summary: CapabilitySummary | undefined; until: number } | undefined;
  private loading: Promise<CapabilitySummary | undefined> | undefined;
  /** Shape (`Type?a&b`) or type (`Type`) → why it is not served. */
  private readonly learned = new Map<string, string>();
  private readonly warned = new Set<string>();
  private statementFailed = false;

  constructor(
    private readonly client: FhirSourceClient,
    private readonly now: () => number = Date.now,
    private readonly metadataTimeoutMs: number = METADATA_TIMEOUT_MS,
  ) {}

  /** The server's CapabilityStatement, summarised; undefined when it could not be read (nothing is skipped then). */
  capabilities(): Promise<CapabilitySummary | undefined> {
    if (this.statement && this.now() < this.statement.until) return Promise.resolve(this.statement.summary);
    // A read under way serves every caller meanwhile: one request, and nothing below built for it to drop.
    if (this.loading) return this.loading;
    const timeoutMs = Math.min(this.metadataTimeoutMs, this.client.settings.timeoutMs);
    // Past its own bound, raising sources[].timeoutMs (the default advice) would change nothing.
    const timeoutHint =
      timeoutMs < this.client.settings.timeoutMs
        ? `nothing to raise: read within ${timeoutMs} ms whatever sources[].timeoutMs, and searches go on without the CapabilityStatement`
        : undefined;
    this.loading = this.client
      .capabilityStatement({ attempts: 1, timeoutMs, ...(timeoutHint ? { timeoutHint } : {}) })
      .then(
        (statement) => summarizeCapabilities(statement),
        (err: unknown) => {
          // Once per source: a server that is down says so through its failing calls.
          if (this.statementFailed) return undefined;
          this.statementFailed = true;
          // Its message names the call and the status only.
          this.client.log.warn(
            { err },
            'the FHIR server\'s CapabilityStatement could not be read: mapping context searches are all asked, and one the server answers "not supported" is taken as empty',
          );
          return undefined;
        },
      )
      .then((summary) => {
        this.statement = { summary, until: this.now() + (summary ? STATEMENT_TTL_MS : FAILED_TTL_MS) };
        this.loading = undefined;
        return summary;
      });
    return this.loading;
  }

  /**
   * Why the server does not serve this search (a sentence), or undefined when it may: its type is missing from
   * the CapabilityStatement, or the server said so of the type or of this search's parameters before.
   */
  async notServed(type: string, params: Record<string, string>): Promise<string | undefined> {
    return this.learned.get(shapeKey(type, params)) ?? this.typeNotServed(type);
  }

  /**
   * Why the server does not serve `type` at all, or undefined: the CapabilityStatement leaves it out, or the
   * server answered a search of it with a 404 "not supported". What the poller asks before polling a type
   * that is only linked to a subject.
   */
  async typeNotServed(type: string): Promise<string | undefined> {
    const said = this.learned.get(type);
    if (said) return said;
    const summary = await this.capabilities();
    const gap = summary ? typeGap(summary, type) : undefined;
    if (gap) this.warnOnce(type, `${type} search`, gap);
    return gap;
  }

  /**
   * Whether `err`, the answer to this search, says the server does not serve it (FhirSourceError.notSupported):
   * then it is remembered (a 404: the whole type; a 400: searches with these parameters) and said once.
   */
  /**
   * `named`: what the search is and what its refusal leaves out, for a search the bridge makes of its own
   * (the RelatedPerson listing: its parameters are all the server's, so it would be named as the type's
   * every search, and said to stop polling the type, which it does not).
   */
  learn(
    type: string,
    params: Record<string, string>,
    err: unknown,
    named?: { what: string; leavesOut: string },
  ): boolean {
    if (!(err instanceof FhirSourceError) || !err.notSupported || err.foreign) return false;
    const key = err.status === 404 ? type : shapeKey(type, params);
    // A 404 refuses the type itself: said as such, whatever the search.
    if (err.status === 404) named = undefined;
    const names = paramNames(params);
    const what =
      named?.what ??
      (err.status === 404 || names.length === 0 ? `${type} search` : `${type} search by ${names.join(', ')}`);
    const reason = `the server answered HTTP ${err.status} "not supported" to a ${what}`;
    if (!this.learned.has(key) && this.learned.size < MAX_LEARNED) this.learned.set(key, reason);
    this.warnOnce(key, what, reason, named?.leavesOut);
    return true;
  }

  private warnOnce(key: string, what: string, reason: string, leavesOut?: string): void {
    if (this.warned.has(key) || this.warned.size >= MAX_LEARNED) return;
    this.warned.add(key);
    // The type and the parameter names only: the search's values name patients.
    this.client.log.warn(
      { search: key },
      `the FHIR server does not serve a ${what} (${reason}): ${leavesOut ?? "the mappings' context searches of it are taken as empty, and a type only linked to a subject is not polled; doctor lists the contexts this leaves out"} (docs/fhir-sources.md)`,
    );
  }
}

/**
 * What the statement says against searching `type` at all: not listed while others are, or listed with
 * interactions that leave search-type out. undefined when it may be searched.
 */
export function typeGap(summary: CapabilitySummary, type: string): string | undefined {
  if (summary.types.size === 0) return undefined;
  const support = summary.types.get(type);
  if (!support) return `its CapabilityStatement does not list ${type}`;
  if (support.interactions && !support.interactions.has('search-type'))
    return `its CapabilityStatement does not list search for ${type}`;
  return undefined;
}

const supports = new WeakMap<FhirSourceClient, ServerSupport>();

/** The one ServerSupport of a source's client (fetchers live for a pass; the client for the source). */
export function serverSupportOf(client: FhirSourceClient): ServerSupport {
  let found = supports.get(client);
  if (!found) {
    found = new ServerSupport(client);
    supports.set(client, found);
  }
  return found;
}
