// A loaded set of mappings: what the sources ask it (which resource types to watch, which subjects a
// changed resource concerns) and mapSubject, the one entry point shared by the live poller and the dry run.
import type { RoutingSettings } from '../config/types.js';
import type { CompiledMapping } from './compile.js';
import { assembleContext, DEFAULT_MAX_READS, type MappingContext } from './context.js';
import { type Evaluated, evaluateMapping } from './evaluate.js';
import { mayMatchToken, normalizeReference, referencesAtPath, SEARCH_PARAM_PATHS } from './fetcher.js';
import { ExpressionRuntimeError } from './fhirpath/expr.js';
import { lazySourceFingerprint, type OwnWrites } from './fingerprint.js';
import { recordNamedFacility } from './routing.js';
import type { MapOptions, MapResult, Resource, ResourceFetcher } from './types.js';

export interface SubjectOf {
  mappingId: string;
  subjectRef: string;
  searchable: boolean;
}

export class MappingSet {
  private watched: ReadonlySet<string> | undefined;

  constructor(
    readonly mappings: CompiledMapping[],
    readonly routing?: RoutingSettings,
    /** What the source's write-back writes to its records: no part of their fingerprints. */
    private readonly ownWrites?: OwnWrites,
  ) {}

  get(mappingId: string): CompiledMapping | undefined {
    return this.mappings.find((m) => m.id === mappingId);
  }

  /**
   * Resource types whose changes can affect an event: what a poller polls, `subscriptions` subscribes to
   * and the doctor probes. The subject's type and the types a context search finds by the subject (the
   * subjectLinks subjectsFor follows). A type a search finds by anything else (the OpenCRVS v1 Task, by its
   * Composition) names no subject when it changes: polling it, or a Subscription to it, read records that
   * map nothing again (docs/mappings.md, "Which changes a poll sees"). Its records are still searched as
   * context whenever their subject is evaluated.
   */
  watchedResourceTypes(): string[] {
    const types = new Set<string>();
    for (const m of this.mappings) {
      types.add(m.subjectType);
      for (const link of m.subjectLinks) types.add(link.type);
    }
    return [...types].sort();
  }

  /**
   * What the ledger keeps with the subject's row of `context`'s reads (MappingContext.reached): the records of
   * a watched type (watchedResourceTypes: a poll or a notification shows their changes), the subject itself
   * left out (a change to it names it), at most `maxReads` of them. A record of a type no poll reads (the
   * birth Location, the attendant Practitioner) would be kept for nothing: a change to it is never seen.
   */
  private contextReads(context: MappingContext, maxReads: number): string[] {
    this.watched ??= new Set(this.watchedResourceTypes());
    const out: string[] = [];
    for (const ref of context.reached ?? []) {
      if (out.length >= maxReads) break;
      if (ref !== context.subjectRef && this.watched.has(ref.slice(0, ref.indexOf('/')))) out.push(ref);
    }
    return out;
  }

  /**
   * The subjects to (re)evaluate when `resource` changed: itself if it is a subject, else whom it
   * points to. `searchable` is false when none of the searches that link it to that subject could
   * return it now (its code is in none of their code sets): it is then not in the subject's context,
   * though an earlier version may have been.
   */
  subjectsFor(resource: Resource): SubjectOf[] {
    const out: SubjectOf[] = [];
    const add = (mappingId: string, subjectRef: string, searchable: boolean) => {
      const known = out.find((o) => o.mappingId === mappingId && o.subjectRef === subjectRef);
      if (known) known.searchable ||= searchable;
      else out.push({ mappingId, subjectRef, searchable });
    };
    for (const m of this.mappings) {
      if (resource.resourceType === m.subjectType && typeof resource.id === 'string') {
        add(m.id, `${resource.resourceType}/${resource.id}`, true);
      }
      for (const link of m.subjectLinks) {
        if (link.type !== resource.resourceType) continue;
        const searchable = link.tokens.every((t) => mayMatchToken(resource, t.name, t.values));
        const paths = SEARCH_PARAM_PATHS[link.param]?.(link.type) ?? [];
        for (const path of paths) {
          for (const ref of referencesAtPath(resource, path)) {
            const normalized = normalizeReference(ref);
            if (normalized.startsWith(`${m.subjectType}/`)) add(m.id, normalized, searchable);
          }
        }
      }
    }
    return out;
  }

  /**
   * Assembles the context (bounded reads, per-call cache), then trigger → fields → routing → validation.
   * A mapped or invalid result comes with `contextReads` (see contextReads): what the ledger keeps with the
   * row, so that a change to one of those records maps the subject again.
   */
  async mapSubjectDetailed(
    mappingId: string,
    subjectRef: string,
    fetcher: ResourceFetcher,
    options: MapOptions = {},
  ): Promise<Evaluated> {
    const mapping = this.get(mappingId);
    if (!mapping) throw new Error(`unknown mapping ${mappingId}; loaded: ${this.mappings.map((m) => m.id).join(', ')}`);
    // The records read, once assembled: a trigger or routing expression failing after that failed on them.
    let read: MappingContext | undefined;
    const maxReads = options.maxReads ?? DEFAULT_MAX_READS;
    try {
      const assembled = await assembleContext(mapping, subjectRef, fetcher, maxReads);
      if ('skipped' in assembled) {
        return {
          result: { status: 'skipped', mappingId, eventType: mapping.eventType, subjectRef, reason: assembled.skipped },
        };
      }
      read = assembled.context;
      const { subject, vars } = assembled.context;
      // Evaluation is synchronous: a facility the record names is looked up in OpenCRVS first, so that
      // routing can check its type. When OpenCRVS cannot be asked the record is mapped all the same (an
      // outage of OpenCRVS must not stop the EMR being read), the facility marked unchecked: the worker
      // checks it before the row is sent (docs/architecture.md, "Exactly once").
      const facility = options.lookupLocations && recordNamedFacility(mapping, subject, vars, this.routing);
      const unchecked = facility ? await options.lookupLocations?.([facility]) : undefined;
      const routingOptions = unchecked?.length ? { ...options, uncheckedLocations: new Set(unchecked) } : options;
      const evaluated = evaluateMapping(mapping, assembled.context, this.routing, routingOptions);
      // Only for a mapped or invalid record (what the ledger compares it for), not for the many that are no
      // event; computed only if the ledger asks for it.
      if (evaluated.result.status === 'mapped' || evaluated.result.status === 'invalid')
        evaluated.result.sourceFingerprint = lazySourceFingerprint(mapping, assembled.context, this.ownWrites);
      // The ledger compares a row's fingerprint with it too: a dismissed row's, a delivered one's (an invalid
      // reading of a delivered row counts a change of the source content).
      const ownOnly = this.ownWrites?.ownOnly;
      if ((evaluated.result.status === 'mapped' || evaluated.result.status === 'invalid') && ownOnly)
        evaluated.result.ownOnlyFingerprint = lazySourceFingerprint(mapping, assembled.context, ownOnly);
      if (evaluated.result.status === 'mapped' || evaluated.result.status === 'invalid')
        evaluated.contextReads = this.contextReads(assembled.context, maxReads);
      return evaluated;
    } catch (err) {
      // A context, trigger or routing expression that failed on this record's data (field expressions are
      // caught per field): the record is invalid and kept with the reason; fetch errors still propagate,
      // so the pass is retried.
      if (!(err instanceof ExpressionRuntimeError)) throw err;
      return {
        result: {
          status: 'invalid',
          mappingId,
          eventType: mapping.eventType,
          subjectRef,
          sourceRef: subjectRef, // the evidence may be what failed
          // Named by where the expression is written (`trigger.when[0].if`), for the engineer to fix it there.
          errors: [
            {
              field: mapping.expressionPaths.get(err.expression) ?? '(context, trigger or routing)',
              message: err.message,
            },
          ],
          ...(read ? { sourceFingerprint: lazySourceFingerprint(mapping, read, this.ownWrites) } : {}),
        },
        ...(read ? { contextReads: this.contextReads(read, maxReads) } : {}),
      };
    }
  }
}

export async function mapSubject(
  set: MappingSet,
  mappingId: string,
  subjectRef: string,
  fetcher: ResourceFetcher,
  options?: MapOptions,
): Promise<MapResult> {
  return (await set.mapSubjectDetailed(mappingId, subjectRef, fetcher, options)).result;
}
