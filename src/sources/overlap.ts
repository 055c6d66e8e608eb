// Configurations that would notify a birth or death by the order of a list. Refused where a source's
// mappings are loaded (serve, sync, replay, validate, doctor), since the event types are the mappings':
// the configuration file alone does not tell them.
//
// - One source, two mappings of one event type: its ledger row is keyed (source, event type, subject), so
//   the record is one event, and the mapping evaluated last decides it: a birth only the first matches
//   was recorded "no longer notifiable" by the second and never sent.
import { ConfigError } from '../config/errors.js';
import type { BridgeConfig } from '../config/types.js';

/** What the check needs of a loaded mapping. */
export interface MappingView {
  id: string;
  eventType: string;
  file: string;
}

/**
 * Throws ConfigError (with the key paths) for the first problem found. `mappingsOf(i)` gives the loaded
 * mappings of `config.sources[i]`, or undefined when they did not load (that source is left out).
 */
export function checkSourceMappings(
  config: Pick<BridgeConfig, 'sources'>,
  mappingsOf: (index: number) => readonly MappingView[] | undefined,
): void {
  for (const [i] of config.sources.entries()) oneMappingPerEventType(mappingsOf(i), i);
}

/** The event types of one source's mappings; throws when two mappings share one. */
function oneMappingPerEventType(mappings: readonly MappingView[] | undefined, index: number): Set<string> {
  const byType = new Map<string, MappingView>();
  for (const mapping of mappings ?? []) {
    const other = byType.get(mapping.eventType);
    if (other) {
      throw new ConfigError(
        `sources[${index}].mappings`,
        `names two ${mapping.eventType} mappings, ${other.id} (${other.file}) and ${mapping.id} (${mapping.file}): ` +
          `a record is one ${mapping.eventType} event of the source, so the mapping evaluated last would decide ` +
          'it, and a record only the other one matches would never be sent. Edit one mapping (a copy of the ' +
          'shipped one, with what you need added) instead of listing a second',
      );
    }
    byType.set(mapping.eventType, mapping);
  }
  return new Set(byType.keys());
}
