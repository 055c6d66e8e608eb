import { evalFhirPath, type FhirPathAtom } from '@medplum/core';
import type { StoredRecord } from './repository.js';

// Search-parameter values of one stored version, evaluated with FHIRPath once and cached on the
// record (a new version gets a new record, so the cache never goes stale). `expression` is the
// parameter's parsed expression for the record's type (see search-expression.ts).

/** Reference strings a search parameter selects, evaluated once per stored version. */
export function referencesOf(record: StoredRecord, code: string, expression: FhirPathAtom): string[] {
  const cache = cacheOf(record, 'ref');
  const cached = cache.get(code);
  if (Array.isArray(cached)) return cached as string[];
  const refs: string[] = [];
  for (const value of evalFhirPath(expression, record.resource)) {
    if (typeof value === 'string') refs.push(value);
    else if (typeof value === 'object' && value !== null) {
      const reference = (value as { reference?: unknown }).reference;
      if (typeof reference === 'string') refs.push(reference);
    }
  }
  cache.set(code, refs);
  return refs;
}

/** `Type/id` of a relative or absolute reference (`_history/n` suffixes are not expected in searches). */
export function lastTwoSegments(reference: string): string {
  // The same as split('/').slice(-2).join('/') without building arrays: searches call this for
  // every value of every reference filter.
  const last = reference.lastIndexOf('/');
  if (last <= 0) return reference;
  const before = reference.lastIndexOf('/', last - 1);
  return before < 0 ? reference : reference.slice(before + 1);
}

/** A reference as searches compare it: `Type/id` (or the bare value when it has no `/`) and the id alone. */
export interface NormalisedReference {
  typed: string;
  id: string;
}

export function normalisedReferencesOf(
  record: StoredRecord,
  code: string,
  expression: FhirPathAtom,
): NormalisedReference[] {
  const cache = cacheOf(record, 'nref');
  const cached = cache.get(code);
  if (Array.isArray(cached)) return cached as NormalisedReference[];
  const refs = referencesOf(record, code, expression).map((ref) => {
    const typed = lastTwoSegments(ref);
    return { typed, id: typed.split('/').pop() ?? typed };
  });
  cache.set(code, refs);
  return refs;
}

interface Token {
  system?: string;
  value?: string;
}

/**
 * Token values a search parameter selects (Coding, CodeableConcept, Identifier, ContactPoint, code,
 * boolean, string), lower-cased and evaluated once per stored version. Matching follows Medplum's
 * in-memory matcher: `code`, `system|code`, `|code` (no system), `system|`, case-insensitive, exact.
 */
export function tokensOf(record: StoredRecord, code: string, expression: FhirPathAtom): Token[] {
  const cache = cacheOf(record, 'token');
  const cached = cache.get(code);
  if (Array.isArray(cached)) return cached as Token[];
  const tokens: Token[] = [];
  const push = (system: unknown, value: unknown): void => {
    tokens.push({
      ...(typeof system === 'string' ? { system: system.toLowerCase() } : {}),
      ...(value === undefined || value === null ? {} : { value: String(value).toLowerCase() }),
    });
  };
  for (const value of evalFhirPath(expression, record.resource)) {
    if (typeof value !== 'object' || value === null) push(undefined, value);
    else if (Array.isArray((value as { coding?: unknown }).coding)) {
      for (const coding of (value as { coding: { system?: unknown; code?: unknown }[] }).coding) {
        push(coding.system, coding.code);
      }
    } else if ('code' in value) push((value as { system?: unknown }).system, (value as { code?: unknown }).code);
    else if ('value' in value) push((value as { system?: unknown }).system, (value as { value?: unknown }).value);
  }
  cache.set(code, tokens);
  return tokens;
}

export function parseToken(input: string): { system?: string; value?: string; hasSystemPart: boolean } {
  const bar = input.indexOf('|');
  if (bar < 0) return { value: input.toLowerCase(), hasSystemPart: false };
  const system = input.slice(0, bar).toLowerCase();
  const value = input.slice(bar + 1).toLowerCase();
  return { ...(system ? { system } : {}), ...(value ? { value } : {}), hasSystemPart: true };
}

export function matchesToken(token: Token, wanted: ReturnType<typeof parseToken>): boolean {
  if (!wanted.hasSystemPart) return token.value === wanted.value;
  if (!wanted.system) return wanted.value !== undefined && !token.system && token.value === wanted.value;
  return token.system === wanted.system && (wanted.value === undefined || token.value === wanted.value);
}

/**
 * Per-version cache of evaluated search-parameter values, by kind then parameter code. Keys are
 * constant strings (no concatenation per lookup): this lookup runs once per resource per search.
 */
export function cacheOf(record: StoredRecord, kind: 'sort' | 'ref' | 'nref' | 'token'): Map<string, unknown> {
  let cache = record.cache.get(kind) as Map<string, unknown> | undefined;
  if (!cache) {
    cache = new Map();
    record.cache.set(kind, cache);
  }
  return cache;
}
