// What a dry run (`map --ref`, `map --input` with a configuration) says of an event dated before its source's
// go-live: serve records it skipped, and the dry run must not answer "mapped" for what will never be sent.
// One place for both forms, so that a record read live and the same record given as a file get one answer.
import type { SourceSettings } from '../config/types.js';
import type { DryRunResult } from '../mapping/index.js';
import { beforeGoLive, goLiveDate, undatedDeath } from '../sources/go-live.js';

const DAY_MS = 86_400_000;

/**
 * An event dated before the source's go-live answered as serve records it on a first reading: skipped, with
 * its reason (sources/go-live.ts), a record the mapping finds invalid too (serve keeps no dead row for it);
 * an undated death dead, with its reason. `poll.sinceDays` keeps the start it chose in the ledger, which the
 * dry run does not open; from the configuration alone that start is at most `sinceDays` days before today,
 * so an event older than that is answered as mapped (or invalid), with a note that serve may skip it.
 */
export function goLiveAnswer(
  result: DryRunResult,
  source: Pick<SourceSettings, 'poll' | 'timeZone'>,
  note: (text: string) => void,
): DryRunResult {
  if (result.status === 'skipped') return result;
  const { since, sinceDays } = source.poll;
  const goLive = goLiveDate(since, source.timeZone);
  const held = `a record the ledger holds a row OpenCRVS has a notification of goes on as that row (ledger --find ${result.subjectRef})`;
  const record = { mappingId: result.mappingId, eventType: result.eventType, subjectRef: result.subjectRef };
  const reason = beforeGoLive(result, goLive);
  if (reason)
    return {
      status: 'skipped',
      ...record,
      reason,
      hint: `serve records it so and sends nothing; ${held}; poll.since set earlier sends it (a back-fill: docs/deployment.md)`,
    };
  const undated = result.status === 'mapped' ? undatedDeath(result, goLive) : undefined;
  if (undated)
    return {
      status: 'invalid',
      ...record,
      sourceRef: result.sourceRef,
      errors: [{ field: 'eventDetails.date', message: undated }],
      hint: `serve keeps it as a dead row and sends nothing; ${held}`,
    };
  const window =
    sinceDays === undefined
      ? undefined
      : goLiveDate(new Date(Date.now() - sinceDays * DAY_MS).toISOString(), source.timeZone);
  if (beforeGoLive(result, window) || (result.status === 'mapped' && undatedDeath(result, window)))
    note(
      `Note: the ${result.eventType} is ${result.eventDate === undefined ? 'undated' : `dated more than poll.sinceDays (${sinceDays}) days ago`}: serve records it skipped (undated: dead), not sent, if that is before the start its first sync chose (kept in the ledger, which this dry run does not open).`,
    );
  return result;
}

/**
 * `map --input` with a configuration of several sources and no `--source`: the file is no source's, so the
 * answer stays the mapping's, and a note names the sources of the mapping's kind that would not send it
 * (dated before their go-live, or an undated death), so that "mapped" is not read as "would be sent".
 */
export function goLiveNoteForSources(
  result: DryRunResult,
  sources: readonly Pick<SourceSettings, 'id' | 'poll' | 'timeZone'>[],
  note: (text: string) => void,
): void {
  if (result.status === 'skipped') return;
  const holding = sources.flatMap((source) => {
    const answer = goLiveAnswer(result, source, () => {});
    return answer === result ? [] : [`${source.id} (go-live ${goLiveDate(source.poll.since, source.timeZone)})`];
  });
  if (holding.length > 0)
    note(
      `Note: ${holding.join(', ')} would not send this ${result.eventType}: ${result.eventDate === undefined ? 'undated' : `dated ${result.eventDate}`}, before the source's go-live, serve records it skipped (an undated death: dead). Pass --source ID to answer as one source does.`,
    );
}
