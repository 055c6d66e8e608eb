// Closing the loop: the OpenCRVS tracking id goes back to the record it came from (per source, optional).
import type { SourceSettings } from '../../config/types.js';
import type { Dhis2Client } from '../dhis2/index.js';
import { dhis2SettingsOf } from '../dhis2/index.js';
import type { FhirSourceClient } from '../fhir/fhir-client.js';
import { Dhis2WriteBack } from './dhis2-target.js';
import { FhirWriteBack } from './fhir-target.js';
import type { WriteBackSource } from './runner.js';
import { writesBack } from './writes-back.js';

export { writeBackTargetText } from './describe.js';
export { Dhis2WriteBack } from './dhis2-target.js';
export { FhirWriteBack, writeBackResourceId } from './fhir-target.js';
export { writeBackDelay } from './policy.js';
export {
  type DeliveredOutcome,
  type WriteBackFailure,
  WriteBackRunner,
  type WriteBackRunnerDeps,
  type WriteBackRunReport,
  type WriteBackSource,
} from './runner.js';
export {
  WRITE_BACK_STATES,
  type WriteBackClaim,
  type WriteBackItem,
  type WriteBackOutcome,
  type WriteBackState,
  WriteBackStore,
} from './store.js';
export {
  type WriteAnswer,
  WriteBackError,
  type WriteBackJob,
  type WriteBackTarget,
  type WriteResult,
} from './types.js';
export { writesBack } from './writes-back.js';

/** The write-back of one source, or undefined when it has none (or it is disabled). Throws on a bad combination. */
export function writeBackSourceFor(
  settings: SourceSettings,
  clients: { fhir?: FhirSourceClient; dhis2?: Dhis2Client },
): WriteBackSource | undefined {
  const writeBack = settings.writeBack;
  if (!writeBack || !writesBack(settings)) return undefined;
  if (settings.kind === 'dhis2') {
    if (!clients.dhis2) throw new Error(`source ${settings.id}: no DHIS2 client for write-back`);
    const target = new Dhis2WriteBack(clients.dhis2, writeBack, dhis2SettingsOf(settings).program);
    return { sourceId: settings.id, settings: writeBack, target };
  }
  // (DHIS2's keys on a FHIR source are refused with the configuration: config/load.ts checkKindKeys.)
  if (!clients.fhir) throw new Error(`source ${settings.id}: no FHIR client for write-back`);
  return { sourceId: settings.id, settings: writeBack, target: new FhirWriteBack(clients.fhir, writeBack) };
}
