// Assembles the context of one subject from a fetcher: the items of the mapping's `context`, in order,
// with a bounded number of fetcher calls and a per-call cache (the same reference is read once).
import type { CompiledMapping, TemplatePart } from './compile.js';
import { isAbsoluteReference, isResource, parseReference, referenceOrigin } from './fetcher.js';
import type { Resource, ResourceFetcher } from './types.js';

export interface MappingContext {
  subject: Resource;
  subjectRef: string;
  /** %subject, %subjectRef and one array per context item. */
  vars: Record<string, unknown>;
  warnings: string[];
  /** The read budget ran out: later context items are empty, so a missing value proves nothing. */
  incomplete?: boolean;
  /**
   * `Type/id` of each record the context reached other than through a search keyed on the subject: what a
   * `read` item asked for (found or not: one created later is a change too), then what a search by anything
   * else found, in the order read. A change to such a record names no subject, so the ledger keeps these with
   * the row to find it by them (MappingSet.mapSubjectDetailed, SourcePipeline.subjectsOf).
   */
  reached?: string[];
}

export const DEFAULT_MAX_READS = 50;

class BudgetExceeded extends Error {}

/**
 * A read or search of the source, made to assemble one subject's context, failed. Names what was being
 * read (`item`: the context item, or 'subject'; `ref`: `Type/id`, or `Type search` without its parameters,
 * which may hold identifiers) so the source can tell one record it will not serve (a mother outside the
 * user's search scope) from a source that is down; the source's own error is the cause.
 */
export class ContextReadError extends Error {
  override readonly name = 'ContextReadError';

  constructor(
    readonly item: string,
    readonly ref: string,
    cause: unknown,
  ) {
    super(`${ref} (${item === SUBJECT ? 'the subject' : `context '${item}'`}) could not be read: ${messageOf(cause)}`, {
      cause,
    });
  }

  /** The subject itself could not be read (not a record related to it). */
  get ofSubject(): boolean {
    return this.item === SUBJECT;
  }
}

const SUBJECT = 'subject';

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * `read()` of a reference (located already, or here), with a failure of the source named (ContextReadError);
 * the read budget running out is not one.
 */
async function readNamed(
  cache: CachingFetcher,
  ref: string,
  item: string,
  at: Located = cache.locate(ref),
): Promise<Resource | undefined> {
  try {
    return await cache.read(at);
  } catch (err) {
    if (err instanceof BudgetExceeded) throw err;
    throw new ContextReadError(item, normalizedRef(ref), err);
  }
}

function normalizedRef(ref: string): string {
  const parsed = parseReference(ref);
  return parsed?.type ? `${parsed.type}/${parsed.id}` : ref;
}

/** Where a reference is read (CachingFetcher.locate). */
type Located = { type: string; id: string } | { elsewhere: string } | undefined;

/** A fetcher wrapper that caches and counts: searches fill the read cache so a later read costs nothing. */
class CachingFetcher {
  private readonly reads = new Map<string, Promise<Resource | undefined>>();
  private readonly searches = new Map<string, Promise<Resource[]>>();
  private left: number;

  constructor(
    private readonly inner: ResourceFetcher,
    readonly maxReads: number,
  ) {
    this.left = maxReads;
  }

  private spend(): void {
    if (this.left <= 0) throw new BudgetExceeded();
    this.left -= 1;
  }

  get otherServerHint(): string | undefined {
    return this.inner.otherServerHint;
  }

  /**
   * Where a reference is read: its Type/id here (the type '' for a urn or a bundle's fullUrl), undefined for
   * what names nothing we can fetch ('#contained', a relative form of no record), and the origin of the
   * server an absolute reference to a record names when it is not the source's own (see
   * ResourceFetcher.resolveAbsolute): such a reference is not read.
   */
  locate(ref: string): Located {
    if (!isAbsoluteReference(ref)) return parseReference(ref);
    const local = this.inner.resolveAbsolute?.(ref);
    if (local) return local;
    return parseReference(ref)?.type ? { elsewhere: referenceOrigin(ref) } : undefined;
  }

  /** The record `locate` found; nothing for another server's, nor for what names none. */
  read(at: Located): Promise<Resource | undefined> {
    if (!at || 'elsewhere' in at) return Promise.resolve(undefined);
    const key = at.type ? `${at.type}/${at.id}` : at.id;
    let hit = this.reads.get(key);
    if (!hit) {
      this.spend();
      hit = this.inner.read(at.type, at.id).then((r) => (isResource(r) ? r : undefined));
      this.reads.set(key, hit);
    }
    return hit;
  }

  search(type: string, params: Record<string, string>): Promise<Resource[]> {
    const key = `${type}?${Object.entries(params)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join('&')}`;
    let hit = this.searches.get(key);
    if (!hit) {
      this.spend();
      hit = this.inner.search(type, params).then((found) => {
        const resources = found.filter(isResource);
        for (const r of resources) {
          if (typeof r.id === 'string') {
            const k = `${r.resourceType}/${r.id}`;
            // Keep the object already read, so one resource is one object across the context.
            if (!this.reads.has(k)) this.reads.set(k, Promise.resolve(r));
          }
        }
        return resources;
      });
      this.searches.set(key, hit);
    }
    return hit;
  }
}

function expand(parts: TemplatePart[], subject: Resource, vars: Record<string, unknown>): string | undefined {
  let out = '';
  for (const part of parts) {
    if ('literal' in part) out += part.literal;
    else if ('codes' in part) out += part.codes.join(',');
    else {
      const values = part.expr.evaluate(subject, vars).filter((v) => typeof v === 'string' && v !== '');
      if (values.length === 0) return undefined;
      out += values.join(',');
    }
  }
  return out;
}

export type ContextOutcome = { context: MappingContext } | { skipped: string };

export async function assembleContext(
  mapping: CompiledMapping,
  subjectRef: string,
  fetcher: ResourceFetcher,
  maxReads = DEFAULT_MAX_READS,
): Promise<ContextOutcome> {
  const cache = new CachingFetcher(fetcher, maxReads);
  const subject = await readNamed(cache, subjectRef, SUBJECT);
  if (!subject) return { skipped: `subject ${subjectRef} not found` };
  if (subject.resourceType !== mapping.subjectType) {
    return { skipped: `subject is a ${subject.resourceType}, ${mapping.id} expects a ${mapping.subjectType}` };
  }
  const canonicalRef = typeof subject.id === 'string' ? `${subject.resourceType}/${subject.id}` : subjectRef;
  // Collections, not single values: FHIRPath sees the same, and the fast path need not wrap them per call.
  const vars: Record<string, unknown> = { subject: [subject], subjectRef: [canonicalRef] };
  const warnings: string[] = [];
  // Reads first, then search results: a cap on what is kept (MappingSet) keeps the reads, which the read
  // budget bounds already, before the search results, which it does not.
  const readRefs = new Set<string>();
  const searchRefs = new Set<string>();
  let exhausted = false;
  for (const item of mapping.context) {
    vars[item.name] = [];
    if (item.kind === 'value') {
      for (const e of item.exprs) {
        const value = e.evaluate(subject, vars);
        if (value.length) {
          vars[item.name] = value;
          break;
        }
      }
      continue;
    }
    if (exhausted) continue;
    try {
      if (item.kind === 'search') {
        const params: Record<string, string> = {};
        let runnable = true;
        for (const p of item.params ?? []) {
          const value = expand(p.parts, subject, vars);
          if (value === undefined) runnable = false;
          else params[p.name] = value;
        }
        if (runnable) {
          try {
            const found = await cache.search(item.type as string, params);
            vars[item.name] = found;
            if (!item.bySubject)
              for (const r of found) if (typeof r.id === 'string') searchRefs.add(`${r.resourceType}/${r.id}`);
          } catch (err) {
            if (err instanceof BudgetExceeded) throw err;
            throw new ContextReadError(item.name, `${item.type} search`, err);
          }
        }
      } else {
        const refs = new Set(
          (item.exprs[0]?.evaluate(subject, vars) ?? []).flatMap((v) =>
            typeof v === 'string' ? [v] : v && typeof v === 'object' && 'reference' in v ? [String(v.reference)] : [],
          ),
        );
        const found: Resource[] = [];
        for (const ref of refs) {
          const at = cache.locate(ref);
          if (at && 'elsewhere' in at) {
            // Said, so the declaration's gap is seen; the origin only: the path names the person's record.
            const hint = cache.otherServerHint;
            const warning = `context '${item.name}': a reference to a record on another server (${at.elsewhere}) was not followed${hint ? `; ${hint}` : ''}`;
            if (!warnings.includes(warning)) warnings.push(warning);
            continue;
          }
          if (at?.type) readRefs.add(`${at.type}/${at.id}`);
          const r = await readNamed(cache, ref, item.name, at);
          // A urn or a bundle's fullUrl names no type: the record found does.
          if (r && typeof r.id === 'string') readRefs.add(`${r.resourceType}/${r.id}`);
          if (r && !found.includes(r)) found.push(r);
        }
        vars[item.name] = found;
      }
    } catch (err) {
      if (!(err instanceof BudgetExceeded)) throw err;
      exhausted = true;
      warnings.push(`context incomplete: more than ${cache.maxReads} reads needed (from '${item.name}' on)`);
    }
  }
  const reached = [...readRefs, ...[...searchRefs].filter((ref) => !readRefs.has(ref))];
  return {
    context: { subject, subjectRef: canonicalRef, vars, warnings, reached, ...(exhausted ? { incomplete: true } : {}) },
  };
}
