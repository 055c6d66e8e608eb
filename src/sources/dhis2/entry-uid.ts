// A code set entry's uid, alone: `ledger --find`'s lookup hint reads it off the mapping files without the
// mapping checks of mapping-codes.ts, which bring FHIRPath along.

/** The uid an entry names as `coded()` reads it: `system|uid` names `uid` (mapping/fhirpath buildCodeSet). */
export function entryUid(entry: string): string {
  return entry.slice(entry.lastIndexOf('|') + 1);
}
