import { badRequest, type FhirPathAtom, globalSchema, OperationOutcomeError, type SearchRequest } from '@medplum/core';
import type { SandboxRepository, StoredRecord } from './repository.js';
import { searchExpression } from './search-expression.js';
import { lastTwoSegments, referencesOf } from './search-values.js';

/**
 * `_include` and `_revinclude` for one page (one level; `:iterate` is not followed). Referenced
 * resources that do not exist are skipped, as on HAPI.
 */
export function includedRecords(repo: SandboxRepository, request: SearchRequest, page: StoredRecord[]): StoredRecord[] {
  if (!request.include?.length && !request.revInclude?.length) return [];
  const seen = new Set(page.map(keyOf));
  const out: StoredRecord[] = [];
  const add = (record: StoredRecord | undefined): void => {
    if (record && !seen.has(keyOf(record))) {
      seen.add(keyOf(record));
      out.push(record);
    }
  };
  for (const target of request.include ?? []) {
    const expression = expressionOf(target.resourceType, target.searchParam);
    for (const record of page) {
      if (record.resource.resourceType !== target.resourceType) continue;
      for (const ref of referencesOf(record, target.searchParam, expression)) {
        const [type, id] = lastTwoSegments(ref).split('/');
        if (!type || !id || (target.targetType && target.targetType !== type)) continue;
        add(repo.record(type, id));
      }
    }
  }
  for (const target of request.revInclude ?? []) {
    const expression = expressionOf(target.resourceType, target.searchParam);
    const wanted = new Set(page.map(keyOf));
    for (const record of repo.recordsOf(target.resourceType)) {
      const refs = referencesOf(record, target.searchParam, expression);
      if (refs.some((ref) => wanted.has(lastTwoSegments(ref)))) add(record);
    }
  }
  return out;
}

function keyOf(record: StoredRecord): string {
  return `${record.resource.resourceType}/${record.resource.id}`;
}

function expressionOf(resourceType: string, code: string): FhirPathAtom {
  const param = globalSchema.types[resourceType]?.searchParams?.[code];
  const expression = searchExpression(resourceType, code);
  if (param?.type !== 'reference' || !expression) {
    throw new OperationOutcomeError(badRequest(`Not a reference search parameter of ${resourceType}: ${code}`));
  }
  return expression;
}
