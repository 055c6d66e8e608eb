// Where a source's write-back puts the tracking id, in words for an operator (the admin page, `ledger
// --find`): configuration only (uids, the identifier system), never the record's own references.
import type { SourceSettings } from '../../config/types.js';

/** Undefined when the source has no write-back configured (now: a job of an earlier configuration stays). */
export function writeBackTargetText(source: Pick<SourceSettings, 'kind' | 'writeBack'>): string | undefined {
  const wb = source.writeBack;
  if (!wb) return undefined;
  const off = wb.enabled ? '' : ' (write-back disabled now)';
  if (source.kind === 'dhis2') {
    if (wb.attribute) return `DHIS2 attribute ${wb.attribute} of the tracked entity${off}`;
    const event = wb.programStage
      ? `the event of program stage ${wb.programStage}`
      : 'the event that triggered the notification';
    return `DHIS2 data element ${wb.dataElement ?? '?'} on ${event}${off}`;
  }
  const system = `identifier of system ${wb.identifierSystem}`;
  if (wb.target === 'task') return `FHIR Task created by the bridge, with an ${system}${off}`;
  if (wb.target === 'documentReference') return `FHIR DocumentReference created by the bridge, with an ${system}${off}`;
  const on = wb.resource === 'trigger' ? 'the resource that triggered the event' : 'the subject Patient';
  return `FHIR ${system} on ${on}${off}`;
}
