// A source id copied from an example. OpenCRVS keeps one event per transactionId across all its clients,
// and the bridge derives transactionIds from the source id and the record's id in its source: two
// hospitals whose bridges both call their EMR `emr` (and whose EMRs both number patients 1, 2, 3…)
// derive the same ids, and the second hospital's births are answered with the first's events.
import type { BridgeConfig } from '../config/index.js';
import { type CheckResult, warn } from './types.js';

/**
 * The ids examples/, the demo and docs/ use, and the bare kind names: likely to be used elsewhere too. Every
 * source id of examples/*.yaml and of docs/*.md's YAML is here (test/unit/deployment-docs.test.ts checks).
 */
export const GENERIC_SOURCE_IDS: readonly string[] = [
  'emr',
  'fhir',
  'dhis2',
  'demo-emr',
  'demo-dhis2-births',
  'demo-dhis2-deaths',
  'dhis2-births',
  'dhis2-deaths',
  'sandbox-dhis2-births',
  'sandbox-dhis2-deaths',
  'ndola-central-emr',
  'kenema-hmis-births',
  'kenema-hmis-deaths',
];

/** `births`, `deaths`, `births and deaths`: what a source's mappings notify; `records` when unknown. */
function recordsOf(eventTypes: readonly string[] | undefined): string {
  const named = [...new Set(eventTypes ?? [])]
    .sort()
    .map((type) => (type === 'birth' || type === 'death' ? `${type}s` : `${type} events`));
  if (named.length === 0) return 'records';
  return named.length === 1 ? (named[0] ?? 'records') : `${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
}

/** `eventTypesOf`: the event types a source's mappings produce, undefined when they did not load. */
export function checkSourceIds(
  config: BridgeConfig,
  eventTypesOf: (sourceId: string) => readonly string[] | undefined = () => undefined,
): CheckResult[] {
  return config.sources
    .filter((source) => GENERIC_SOURCE_IDS.includes(source.id.toLowerCase()))
    .map((source) =>
      warn(
        `source id ${source.id}`,
        `"${source.id}" is an example id: transaction ids are derived from the source id and the record's id, and ` +
          'OpenCRVS keeps one event per transaction id across all its clients, so another bridge using it against ' +
          `the same OpenCRVS would have its ${recordsOf(eventTypesOf(source.id))} taken for this one's. Use an id unique among every bridge ` +
          "sending to this OpenCRVS (the facility's name, say): before the first sync, or with " +
          '`opencrvs-bridge ledger rename-source` (docs/deployment.md)',
      ),
    );
}
