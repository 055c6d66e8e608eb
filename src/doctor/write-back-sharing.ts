// DHIS2 write-backs of different event types into one field. A tracked entity's attribute holds one value,
// and the DHIS2 write-back never overwrites another (sources/writeback/dhis2-target.ts): a child notified as
// a birth and then, dead in infancy, as a death is one tracked entity, so the death's tracking id finds the
// birth's in the attribute and its job is abandoned. The same with a data element on the first event of one
// programme stage. Said from the configuration and the mappings' event types, before any record hits it.
import type { SourceSettings } from '../config/types.js';
import { serverOf } from '../sources/overlap.js';
import { type CheckResult, warn } from './types.js';

interface Writer {
  index: number;
  source: SourceSettings;
  key: string;
  eventTypes: readonly string[];
}

/**
 * The field a DHIS2 source's write-back fills on a record shared by its event types: its attribute (one per
 * tracked entity, whatever the programme), or its data element on one programme stage (the first event of
 * that stage). Undefined for a data element on the triggering event: each event type has its own event.
 */
function sharedField(source: SourceSettings): string | undefined {
  const wb = source.writeBack;
  if (source.kind !== 'dhis2' || !wb?.enabled) return undefined;
  if (wb.attribute) return `writeBack.attribute ${wb.attribute}`;
  if (wb.dataElement && wb.programStage)
    return `writeBack.dataElement ${wb.dataElement} (programStage ${wb.programStage})`;
  return undefined;
}

/** `eventTypesOf`: the event types a source's mappings produce, undefined when they did not load. */
export function checkWriteBackSharing(
  sources: readonly SourceSettings[],
  eventTypesOf: (sourceId: string) => readonly string[] | undefined,
): CheckResult[] {
  const groups = new Map<string, Writer[]>();
  sources.forEach((source, index) => {
    const field = sharedField(source);
    const eventTypes = [...new Set(eventTypesOf(source.id) ?? [])].sort();
    if (!field || eventTypes.length === 0) return;
    let server: string;
    try {
      // One server as the overlap check takes it (sources/overlap.ts).
      server = serverOf(source);
    } catch {
      return; // A baseUrl that is no URL fails the config check.
    }
    const key = `${server}\n${field}`;
    groups.set(key, [...(groups.get(key) ?? []), { index, source, key: field, eventTypes }]);
  });
  const results: CheckResult[] = [];
  for (const writers of groups.values()) {
    const types = [...new Set(writers.flatMap((w) => w.eventTypes))].sort();
    if (types.length < 2) continue;
    const [first] = writers;
    if (!first) continue;
    const keys = writers.map((w) => `sources[${w.index}].writeBack`).join(' and ');
    const whose = writers.map((w) => `${w.source.id}: ${w.eventTypes.join(', ')}`).join('; ');
    const split =
      writers.length === 1
        ? `split source ${first.source.id} into one source per event type, each with its own field, or write to a data element of the triggering event (writeBack.dataElement without programStage)`
        : 'give each event type its own field (another attribute, or a data element of the triggering event: writeBack.dataElement without programStage)';
    results.push(
      warn(
        'write-back',
        `${keys} ${writers.length === 1 ? 'writes' : 'write'} the tracking ids of ${types.join(' and ')} events (${whose}) to the same ${first.key} on one ` +
          'DHIS2 server: a person notified twice (a child born, then dead in infancy) holds the first tracking id ' +
          "there, which the bridge never overwrites, so the second event's write-back is abandoned; " +
          split,
      ),
    );
  }
  return results;
}
