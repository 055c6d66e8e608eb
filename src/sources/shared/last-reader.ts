// The other sources of one DHIS2 programme (sources/overlap.ts sourcesSharingRecords), asked in turn for a
// record the row's own source's user is no longer shown: the one that last read it for that row (its
// read_by_source) first, as it most likely still is shown it. Only an order: a record transferred back
// leaves read_by_source naming the other source.

/** `sources` with the one `lastReader` names first, the others in their order; as they are without one. */
export function lastReaderFirst<T>(
  sources: readonly T[],
  idOf: (source: T) => string,
  lastReader: string | undefined,
): T[] {
  const first = lastReader === undefined ? undefined : sources.find((source) => idOf(source) === lastReader);
  return first ? [first, ...sources.filter((source) => source !== first)] : [...sources];
}
