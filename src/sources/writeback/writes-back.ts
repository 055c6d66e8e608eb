// Whether a source writes back, apart from the targets (index.ts): `write-backs` and `ledger` ask it
// without loading the FHIR and DHIS2 clients.
import type { SourceSettings } from '../../config/types.js';

/** Whether this source writes tracking ids back (a job of a source that does not is abandoned when it runs). */
export function writesBack(settings: SourceSettings): boolean {
  return settings.writeBack?.enabled === true;
}
