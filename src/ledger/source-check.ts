// Refusing to start on a ledger that holds history under a source id the configuration no longer has.
// Transaction ids are derived from the source id, so a source renamed in the file (a typo fixed) would
// send every record again as new OpenCRVS events, and rows left dead under the old id would go unseen.
// The operator says what happened: renamed (`ledger rename-source`) or removed for good (`ledger
// retire-source`). serve, sync and replay refuse; doctor fails with the same words.
import type { Ledger } from './types.js';

export interface UnaccountedSource {
  sourceId: string;
  rows: number;
  cursors: number;
}

/** Source ids with history in the ledger that are neither configured nor retired. */
export function unaccountedSources(
  ledger: Pick<Ledger, 'sources'>,
  configured: readonly string[],
): UnaccountedSource[] {
  const known = new Set(configured);
  const retired = ledger.sources.retired();
  return ledger.sources
    .recordedIds()
    .filter((id) => !known.has(id) && !retired.has(id))
    .map((sourceId) => {
      const { rows, cursors } = ledger.sources.history(sourceId);
      return { sourceId, rows, cursors };
    });
}

/** What is wrong and both ways out, with the commands to run. */
export function unaccountedSourcesMessage(
  ledger: Pick<Ledger, 'sources'>,
  unaccounted: readonly UnaccountedSource[],
  configured: readonly string[],
): string {
  const recorded = new Set(ledger.sources.recordedIds());
  // A configured source with nothing recorded next to one unaccounted id: most likely the same source renamed.
  const fresh = configured.filter((id) => !recorded.has(id));
  const [only] = unaccounted;
  const guess = unaccounted.length === 1 && fresh.length === 1 ? fresh[0] : undefined;
  const old = unaccounted.length === 1 && only ? only.sourceId : '<old id>';
  const listed = unaccounted.map((u) => `"${u.sourceId}" (${u.rows} events, ${u.cursors} cursors)`).join(', ');
  const plural = unaccounted.length > 1;
  return (
    `the ledger holds history under source id${plural ? 's' : ''} ${listed}, not in sources[] and not retired. ` +
    'A source that reappears under another id sends every record again as new OpenCRVS events. ' +
    `Renamed${guess ? ` to "${guess}"` : ''}? Stop the bridge and run ` +
    `\`opencrvs-bridge ledger rename-source ${old} ${guess ?? '<new id>'}\`. ` +
    `Removed for good? Run \`opencrvs-bridge ledger retire-source ${old}\`${plural ? ' for each' : ''}.`
  );
}
