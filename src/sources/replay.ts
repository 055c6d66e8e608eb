// Replay of dead rows (admin page, admin API, `opencrvs-bridge replay`). Each row is first evaluated again
// at its source, as a poll would: the record as the source holds it now, through the mappings and the
// routing as configured now. That is what an operator fixed before pressing Replay (a mapping, a route, the
// record itself), and the only way a record the mapping refused, stored without a payload, can go out.
// The rows keep their transactionIds either way, so a replay never creates a second OpenCRVS event.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { type Ledger, type LedgerRow, notReplayable, type ReplayResult } from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';
import type { SubjectRecheck } from './recheck.js';

/** Subjects read from a source per call: a `replay --dead` of thousands of rows reads in bounded batches. */
const BATCH = 50;
/** Rows one `--dead` replay takes on (the ledger's order); the rest stay dead for the next replay. */
const MAX_ROWS = 10_000;
/**
 * Rows requeued per ledger transaction, and looked up per turn of the event loop. Run beside serve (the
 * admin API), a replay of 5,500 rows in one transaction held serve's event loop for 415 ms, /healthz and
 * senders' acknowledgements waiting. Each chunk commits on its own: rows of a chunk not yet committed
 * when the process stops are still dead, and the next replay takes them (a requeue needs a dead row).
 */
const CHUNK_ROWS = 200;

export interface ReplayDeps {
  ledger: Ledger;
  /** Per source id: evaluates subjects again and records the outcome (the delivery recheck's runners). */
  runners: ReadonlyMap<string, SubjectRecheck>;
  logger: Logger;
  /** Rows a `--dead` replay takes (default MAX_ROWS). */
  maxRows?: number;
  /** Rows per requeue transaction and per turn of the event loop (default CHUNK_ROWS). */
  chunkRows?: number;
}

export async function replayRows(deps: ReplayDeps, ids: number[] | 'dead'): Promise<ReplayResult> {
  const { ledger } = deps;
  const maxRows = deps.maxRows ?? MAX_ROWS;
  const inChunks = chunked(deps.chunkRows ?? CHUNK_ROWS);
  // A row named twice is one row: taken twice, it was counted requeued twice, or requeued and then skipped
  // as no longer dead (a replay that worked, reported as failed).
  const named = ids === 'dead' ? undefined : [...new Set(ids)];
  const rows =
    named === undefined
      ? await deadRows(ledger, maxRows, inChunks)
      : named
          .flatMap((id) => ledger.get(id) ?? [])
          .filter((row) => row.state === 'dead')
          .map(taken);
  const unread = await reevaluate(deps, rows);

  const requeued: number[] = [];
  const skipped: ReplayResult['skipped'] = [];
  const notes: NonNullable<ReplayResult['notes']> = [];
  const stillDead: number[] = [];
  await inChunks(rows, (row) => {
    // Classified by what the evaluation did: a row it queued again may already be in flight or delivered.
    const now = ledger.get(row.id);
    if (!now || now.state === 'dead') stillDead.push(row.id);
    else if (now.state === 'skipped')
      skipped.push({ id: row.id, reason: `the source no longer makes it an event: ${now.skipReason ?? 'skipped'}` });
    else {
      requeued.push(row.id);
      if (now.withdrawnReason) notes.push({ id: row.id, note: withdrawnNote(now.withdrawnReason) });
    }
  });
  const takenIds = new Set(rows.map((row) => row.id));
  // A failed row named (an outage over, its backoff up to delivery.maxDelayMs still to wait) is made due
  // now, nothing else of it changed: its next attempt is the retry it was waiting for, under the same
  // transactionId, checked at its source first when it waited that long (the worker's recheck). It is not
  // mapped again here: that is for a row OpenCRVS or the mapping refused, which a failed row is not.
  const failed = named?.filter((id) => !takenIds.has(id) && ledger.get(id)?.state === 'failed') ?? [];
  if (failed.length > 0) ledger.retryNow(failed);
  for (const id of failed) {
    takenIds.add(id);
    requeued.push(id);
    notes.push({ id, note: DUE_NOW_NOTE });
  }
  const others = named?.filter((id) => !takenIds.has(id)) ?? [];
  const stored: ReplayResult = { requeued: [], skipped: [] };
  await inChunks.each([...stillDead, ...others], (ids) => {
    const chunk = ledger.replay(ids);
    stored.requeued.push(...chunk.requeued);
    stored.skipped.push(...chunk.skipped);
  });
  await inChunks(stored.skipped, (item) => {
    const row = ledger.get(item.id);
    // No payload: the mapping refused the record, and still does (or it could not be read again).
    if (row?.state === 'dead' && row.payload === null) {
      const why =
        unread.get(item.id) ??
        (row.lastError?.kind === 'source-read'
          ? `the source still does not serve what the record needs: ${row.lastError.message}`
          : `the record still cannot be mapped: ${row.lastError?.message ?? 'no reason kept'}`);
      skipped.push({ id: item.id, reason: why });
    } else if (named && row && row.state !== 'dead') {
      // Named but neither dead nor failed (failed rows were made due above): said as serve's admin API says it.
      skipped.push({ id: item.id, reason: notReplayable(row.state) });
    } else skipped.push(item);
  });
  await inChunks(stored.requeued, (id) => {
    const why = unread.get(id);
    const withdrawn = ledger.get(id)?.withdrawnReason;
    if (withdrawn) notes.push({ id, note: withdrawnNote(withdrawn) });
    else if (why)
      notes.push({
        id,
        note: `${why}; requeued as stored, checked at the source before it is sent (unless delivery.recheckAfterSeconds is 0)`,
      });
  });
  // More dead rows than one replay takes: say so, or the operator takes the answer for all of them. In one
  // statement: a total read first and the rows taken read after it, a turn of the event loop between chunks,
  // was off by each row serve dismissed, replayed or killed in between.
  const leftDead = named === undefined && rows.length === maxRows ? ledger.deadExcept(rows.map((row) => row.id)) : 0;
  return {
    requeued: [...requeued, ...stored.requeued].sort((a, b) => a - b),
    skipped,
    ...(notes.length > 0 ? { notes: notes.sort((a, b) => a.id - b.id) } : {}),
    ...(leftDead > 0 ? { leftDead } : {}),
  };
}

const DUE_NOW_NOTE =
  'failed, waiting for its next retry: due now, with its attempts and transactionId kept (a held queue still waits)';

/** What a replay keeps of a row it takes: not its payload, thousands of which it has no use for. */
type Taken = Pick<LedgerRow, 'id' | 'sourceId' | 'subjectKey'>;

const taken = ({ id, sourceId, subjectKey }: LedgerRow): Taken => ({ id, sourceId, subjectKey });

/**
 * Up to `maxRows` dead rows, newest first as `list` gives them, a page per turn of the event loop: 5,000
 * read at once held it for 300-480 ms. A row that leaves the dead state meanwhile (a dismissal) moves the
 * later pages up by one, so one may be missed: it stays dead, for the next replay. One that dies meanwhile
 * moves them down, and a row read twice is taken once.
 */
async function deadRows(ledger: Ledger, maxRows: number, inChunks: ReturnType<typeof chunked>): Promise<Taken[]> {
  const rows = new Map<number, Taken>();
  for (let offset = 0; rows.size < maxRows; ) {
    if (offset > 0) await nextTurn();
    const limit = Math.min(inChunks.size, maxRows - rows.size);
    const page = ledger.list({ states: ['dead'], limit, offset });
    for (const row of page) rows.set(row.id, taken(row));
    offset += page.length;
    if (page.length < limit) break;
  }
  return [...rows.values()];
}

/** Has each row's source evaluate its subject again; returns why, for rows whose source could not be read. */
async function reevaluate(deps: ReplayDeps, rows: Taken[]): Promise<Map<number, string>> {
  const unread = new Map<number, string>();
  const bySource = new Map<string, Taken[]>();
  for (const row of rows) {
    const sourceRows = bySource.get(row.sourceId);
    if (sourceRows) sourceRows.push(row);
    else bySource.set(row.sourceId, [row]);
  }
  for (const [sourceId, sourceRows] of bySource) {
    const run = deps.runners.get(sourceId);
    const subjects = [...new Set(sourceRows.map((row) => row.subjectKey))];
    let failure = run ? undefined : `source ${sourceId} is not in the configuration`;
    let readUpTo = 0; // subjects[0, readUpTo) were evaluated
    while (run && failure === undefined && readUpTo < subjects.length) {
      const batch = subjects.slice(readUpTo, readUpTo + BATCH);
      try {
        await run(batch);
        readUpTo += batch.length;
      } catch (err) {
        // One failed batch stands for the rest: a source that hangs would otherwise cost every batch its
        // timeouts and retries, for hours on a large replay.
        failure = `the source could not be read to map the record again (${err instanceof Error ? err.message : String(err)})`;
        deps.logger.warn(
          { err, source: sourceId, subjects: subjects.length - readUpTo },
          'replay: the source could not be read',
        );
      }
    }
    if (failure === undefined) continue;
    const unevaluated = new Set(subjects.slice(readUpTo));
    for (const row of sourceRows) if (unevaluated.has(row.subjectKey)) unread.set(row.id, failure);
  }
  return unread;
}

/**
 * Runs `each` over items `size` at a time (one call per item, or per slice with `.each`), with a turn of
 * the event loop between slices: what a replay does for thousands of rows, a ledger read or write each,
 * must not hold serve's event loop for all of them at once.
 */
function chunked(rows: number) {
  const size = Math.max(1, Math.floor(rows));
  const each = async <T>(items: readonly T[], run: (slice: T[]) => void): Promise<void> => {
    for (let at = 0; at < items.length; at += size) {
      if (at > 0) await nextTurn();
      run(items.slice(at, at + size));
    }
  };
  const perItem = <T>(items: readonly T[], run: (item: T) => void): Promise<void> =>
    each(items, (slice) => {
      for (const item of slice) run(item);
    });
  return Object.assign(perItem, { each, size });
}

/** A row the source withdrew while an OpenCRVS event exists: the worker asks OpenCRVS before sending. */
function withdrawnNote(reason: string): string {
  return `withdrawn by the source (${reason}): OpenCRVS is asked first, and nothing more is sent if it was never notified`;
}
