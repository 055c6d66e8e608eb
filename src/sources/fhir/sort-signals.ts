// What a search answer says about whether the server honoured `_sort=_lastUpdated`. The poller's keyset
// is only safe over sorted results (poller.ts); doctor tells an operator when the answer cannot say.
import type { Bundle } from '@medplum/fhirtypes';

/** The query of the answer's self link; undefined when there is none, or it has no query. */
function selfQuery(page: Bundle): URLSearchParams | undefined {
  const self = page.link?.find((link) => link.relation === 'self')?.url;
  if (!self) return undefined;
  try {
    const params = new URL(self, 'http://self.invalid/').searchParams;
    return [...params.keys()].length > 0 ? params : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A FHIR server echoes in `Bundle.link[self]` the parameters it used. One that echoes the search (its
 * `_lastUpdated` or `_count`) but not `_sort=_lastUpdated` did not sort. A self link without a query
 * says nothing either way.
 */
export function sortEchoed(page: Bundle): boolean {
  const params = selfQuery(page);
  if (!params) return true;
  const sort = params.get('_sort') ?? params.get('_sort:asc');
  if (sort !== null) return sort.split(',')[0]?.trim() === '_lastUpdated';
  return !params.has('_lastUpdated') && !params.has('_count');
}

/**
 * `unsorted`: the self link shows `_sort` was not used (the poller then reads every pass to the end).
 * `blind`: neither a self link with the search nor `Bundle.total`: a server ignoring `_sort` could then
 * hide a record edited out of order at the end of a page from the poller's checks. `sorted` otherwise.
 */
export function sortSignals(page: Bundle): 'sorted' | 'unsorted' | 'blind' {
  if (!sortEchoed(page)) return 'unsorted';
  return selfQuery(page) === undefined && page.total === undefined ? 'blind' : 'sorted';
}
