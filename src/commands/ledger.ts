// `opencrvs-bridge ledger`: what happened to each event. The default view shows ids, states, errors
// and tracking ids, never declarations (personal data), nor a dismissal's reason unless asked
// (--show-reasons); `--json` is the same data for scripts.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { BridgeConfig } from '../config/types.js';
import {
  type AttemptRow,
  countedAttempts,
  DISMISSED_PREFIX,
  type HoldState,
  heldSince,
  isDismissed,
  LEDGER_STATES,
  type LedgerError,
  type LedgerRow,
  type LedgerState,
  openLedger,
} from '../ledger/index.js';
import { identifierLookup } from '../sources/identifier-lookup.js';
// The store and the text alone: the index brings the write-back targets, and with them the source clients.
import { writeBackTargetText } from '../sources/writeback/describe.js';
import { type WriteBackItem, WriteBackStore } from '../sources/writeback/store.js';
import { registerLedgerSources } from './ledger-sources.js';
import { configuredSourcesText, LOCAL_ONLY, loadConfigOrReport, usingLedger } from './options.js';

interface LedgerOptions {
  config?: string;
  status?: string;
  eventType?: string;
  source?: string;
  find?: string;
  updatedAfterNotification?: boolean;
  limit?: string;
  json?: boolean;
  showReasons?: boolean;
}

const MESSAGE_WIDTH = 60;

/**
 * The most rows one listing prints, as many as `replay --dead` reads again at once. Every row is read and
 * held in memory before the first is printed: 100,000 took 10 s, 1.1 GB and 116 MB of JSON (a scale
 * review). More than this is a job for a copy of the ledger file and sqlite3, or narrower filters.
 */
export const MAX_LEDGER_LIMIT = 10_000;

export function registerLedger(program: Command): void {
  const ledger = program
    .command('ledger')
    .description(
      "Show what happened to each event: state, attempts, last error, tracking id, and for one event found with --find the write-back of that id to its source (no personal data: no declaration, and a dismissal's reason only with --show-reasons). ATTEMPTS is the row's total in this budget, with (N counted) when some never reached OpenCRVS (a timeout, a refused connection, a gateway's 502-504): only the N counted go toward delivery.maxAttempts (--json: attempts, countedAttempts, unreachedAttempts).",
    )
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option('--status <states>', `only these states, comma-separated (${LEDGER_STATES.join(', ')})`)
    .option('--event-type <type>', 'only this event type (birth, death, …)')
    .option('--source <id>', 'only this source id')
    .option(
      '--find <ref>',
      "the event of one source record (Patient/123, Encounter/9, emr:Patient/123 as the table prints it, or the id alone), OpenCRVS tracking ID (in any case), or ledger row ('#19' in quotes, as sync prints it); one match also lists its attempts and its write-back: where the tracking ID is written, the ID, the job's earlier IDs, its state and error or note (`writeBack` with --json); ATTEMPTS, and the attempt list's ATTEMPT numbers, count from 1 again each time the row is queued under a new transactionId generation (a replay, a corrected record), the earlier generations' attempts staying listed above, and an attempt that never reached OpenCRVS reads e.g. '3 (not counted)', one of the ATTEMPTS not counted toward delivery.maxAttempts (--json: unreached); exit 1 when nothing matches (with --json, `explanation` says what a lookup matches). Births and deaths are recorded under the child's or deceased's record, the resource that showed the event (SOURCE REF), the tracking ID and the row, not the mother's record: look a birth up by the child's record or its tracking ID. Identifiers (an MRN) are not searched (the ledger indexes none; a declaration it still holds carries them, unsearched): GET <baseUrl>/Patient?identifier=<value> at a FHIR source gives the record's id (a DHIS2 source: GET <baseUrl>/api/tracker/trackedEntities?program=<program>&filter=<attribute uid>:eq:<value>, the attribute filled in from its mappings' codes.nationalId, then TrackedEntity/<uid>)",
    )
    .option(
      '--updated-after-notification',
      'only events whose source record changed after OpenCRVS was notified: the change was not sent, the registrar corrects the record in OpenCRVS (docs/runbook.md)',
    )
    .option('--limit <n>', `at most this many rows, newest first (1-${MAX_LEDGER_LIMIT.toLocaleString('en')})`, '100')
    .option('--json', 'print JSON instead of a table')
    .option(
      '--show-reasons',
      'print the reason an operator gave for a dismissal (free text that may name the patient: by default only its length, as on the admin page without admin.showPersonalData)',
    )
    .action((options: LedgerOptions) => runLedger(options));
  registerLedgerSources(ledger);
}

async function runLedger(options: LedgerOptions): Promise<void> {
  const states = parseStates(options.status);
  const limit = Number(options.limit ?? '100');
  if (states === undefined || !Number.isInteger(limit) || limit < 1 || limit > MAX_LEDGER_LIMIT) {
    console.error(
      states === undefined
        ? `--status: expected one or more of ${LEDGER_STATES.join(', ')}`
        : !Number.isInteger(limit) || limit < 1
          ? '--limit: expected a positive integer'
          : `--limit: at most ${MAX_LEDGER_LIMIT} rows at once; narrow the listing with --status, --event-type or --source`,
    );
    process.exitCode = 2;
    return;
  }
  const config = loadConfigOrReport(options.config, undefined, LOCAL_ONLY);
  if (!config) return;
  if (!existsSync(config.store.path)) {
    const explanation = `No ledger at ${config.store.path} (store.path) yet: nothing has been recorded there.`;
    if (options.json) console.log(JSON.stringify({ hold: null, counts: [], rows: [], explanation }, null, 2));
    else console.log(explanation);
    if (options.find) process.exitCode = 1; // nothing matches: a script asking "did it arrive?" hears no
    return;
  }
  await usingLedger('ledger', config.store.path, () => listLedger(config, options, states, limit));
}

/** The listing (or the one event looked up) of the ledger at store.path. */
function listLedger(config: BridgeConfig, options: LedgerOptions, states: LedgerState[], limit: number): void {
  const ledger = openLedger(config.store.path, {
    payloadRetentionHours: config.store.payloadRetentionHours,
    inspectOnly: true,
  });
  try {
    // A typo (`--event-type Birth`, a source id that is not there) must not look like "nothing there".
    const knownTypes = () => new Set(['birth', 'death', ...ledger.counts().map((c) => c.eventType)]);
    const eventType = options.eventType;
    if (eventType !== undefined && !knownTypes().has(eventType)) {
      console.error(`ledger: unknown --event-type "${eventType}" (one of ${[...knownTypes()].sort().join(', ')})`);
      process.exitCode = 2;
      return;
    }
    if (options.source !== undefined && !config.sources.some((s) => s.id === options.source)) {
      const recorded = ledger.list({ sourceId: options.source, limit: 1 }).length > 0;
      if (!recorded) {
        console.error(
          `ledger: no source "${options.source}" in the config or the ledger (${configuredSourcesText(config)})`,
        );
        process.exitCode = 2;
        return;
      }
    }
    // One row more than shown tells whether the listing is cut short, without counting what matches.
    const read = ledger.list({
      states: states.length ? states : undefined,
      eventType: options.eventType,
      sourceId: options.source,
      find: options.find?.trim() || undefined,
      ...(options.updatedAfterNotification ? { updatedAfterNotification: true } : {}),
      limit: limit + 1,
    });
    const rows = read.slice(0, limit);
    // "Did this one arrive?": one event found, so its history answers it.
    const one = options.find && rows.length === 1 ? rows[0] : undefined;
    // Like grep: a lookup that finds nothing exits 1, so a script can tell "not there" from "there".
    if (options.find && rows.length === 0) process.exitCode = 1;
    const history = one ? ledger.attempts(one.id) : undefined;
    const warnings = one ? ledger.mappingWarnings(one.id) : [];
    const readBy = one ? ledger.readBy(one.id) : undefined;
    const writeBack = one ? writeBackOf(config.store.path, one.id) : undefined;
    // Where the job writes, as its source is configured now (undefined: write-back taken out of the config).
    const oneSource = one && config.sources.find((source) => source.id === one.sourceId);
    const writeBackTarget = oneSource ? writeBackTargetText(oneSource) : undefined;
    const hold = ledger.getHold();
    const counts = ledger.counts();
    if (options.json) {
      const attempts = history
        ? {
            attempts: history,
            mappingWarnings: warnings,
            ...(readBy ? { readBySource: readBy } : {}),
            writeBack: writeBack ? writeBackView(writeBack, writeBackTarget) : null,
          }
        : {};
      // No match: the text form's explanation, so a script does not read "not there" as "did not arrive".
      const none =
        options.find && rows.length === 0
          ? { explanation: noMatchText(options.find.trim(), config, options.config, ' ') }
          : {};
      const shown = rows.map((row) => publicView(row, options.showReasons === true));
      const view = { hold: hold ?? null, counts, rows: shown, ...attempts, ...none };
      console.log(JSON.stringify(view, null, 2));
      return;
    }
    if (hold) console.log(holdBanner(hold));
    const totals = new Map<string, number>();
    for (const c of counts) totals.set(c.state, (totals.get(c.state) ?? 0) + c.count);
    // The whole ledger's counts above one looked-up event read as that event's: left out with --find. An
    // empty one is named in full, so a config pointing at another file than serve's shows it.
    if (!options.find || totals.size === 0)
      console.log(
        totals.size
          ? [...totals].map(([state, n]) => `${state}: ${n}`).join('  ')
          : `The ledger at ${config.store.path} (store.path) is empty: nothing has been recorded there.`,
      );
    if (rows.length) console.log(`\n${table(rows, options.showReasons === true)}`);
    if (read.length > limit) console.log(`\n${cutShortText(rows.length, counts, states, options)}`);
    if (options.find && rows.length === 0) console.log(`\n${noMatchText(options.find.trim(), config, options.config)}`);
    // One event looked up: its whole error, which the table cuts to a column.
    const [only] = rows;
    if (
      options.find &&
      rows.length === 1 &&
      only?.lastError &&
      errorText(only.lastError, Infinity).length > MESSAGE_WIDTH
    )
      console.log(`\nLast error in full:\n  ${errorText(only.lastError, Infinity)}`);
    if (warnings.length) console.log(`\nMapping warnings:\n${warnings.map((w) => `  ${w}`).join('\n')}`);
    if (readBy)
      console.log(
        `\nAlso read by source ${readBy} (same DHIS2 programme: the record moved into its org units); its versions are recorded on this row, never sent as a second event.`,
      );
    if (history) console.log(`\n${attemptsTable(history)}`);
    if (writeBack) console.log(`\n${writeBackText(writeBack, writeBackTarget)}`);
  } finally {
    ledger.close();
  }
}

/**
 * The footer of a listing cut at --limit: the newest rows alone read as the whole ledger. How many match comes
 * from the per-state counts already read (no second scan of the rows), so only without --source or --find,
 * which those counts do not split by.
 */
function cutShortText(
  shown: number,
  counts: ReadonlyArray<{ state: LedgerState; eventType: string; count: number }>,
  states: readonly LedgerState[],
  options: LedgerOptions,
): string {
  const hint = 'use --limit or --status';
  if (options.source !== undefined || options.find || options.updatedAfterNotification)
    return `showing the newest ${shown}, more match; ${hint}`;
  const matching = counts
    .filter(
      (c) =>
        (states.length === 0 || states.includes(c.state)) && (!options.eventType || c.eventType === options.eventType),
    )
    .reduce((sum, c) => sum + c.count, 0);
  return `showing ${shown} of ${matching.toLocaleString('en')}; ${hint}`;
}

/**
 * "No match" says what a lookup can match. The ledger keys an event by its subject and by the resource that
 * showed it, not by the other records read with it (the mother, the encounters and observations of the
 * context): asked by the mother's Patient, a delivered birth is not found, and a bare "no match" reads as
 * "it did not arrive". Exit 1 stays (like grep: nothing is recorded under that key), and says no more.
 */
function noMatchText(find: string, config: BridgeConfig, configFile: string | undefined, lineBreak = '\n'): string {
  const head = `No event matches ${find}.`;
  if (find.startsWith('#')) return head;
  const keys =
    `${head}${lineBreak}Events are recorded under the child's (or the deceased's) record (Patient/…, TrackedEntity/…), the ` +
    'resource that showed the event (SOURCE REF: often the birth Encounter), the OpenCRVS tracking ID and the ' +
    "row ('#19'). A mother's record, and the other records read with an event, are not: no match by one of them " +
    "does not mean the event did not arrive. Look it up by the child's record or the tracking ID.";
  // A reference (Patient/…) is no identifier; a bare value may be one, which is what hospital staff hold.
  return find.includes('/')
    ? `${keys}${lineBreak}${dryRunText(find, configFile)}`
    : `${keys} ${identifierText(find, config)}${lineBreak}${dryRunText('Patient/<its id>', configFile)}`;
}

/**
 * A record the mappings did not take as an event (no evidence, a stillbirth, a merged duplicate) leaves no
 * row, nor does one last changed before the source's go-live, which no poll reads: only the dry run on the
 * live record says which. `ref` is what the operator typed (or a placeholder), nothing from the ledger.
 */
function dryRunText(ref: string, configFile: string | undefined): string {
  const prefixed = /^([A-Za-z0-9_.-]+):([A-Z][A-Za-z]+\/.+)$/.exec(ref);
  const args = prefixed ? `--source ${prefixed[1]} --ref ${prefixed[2]}` : `--ref ${ref}`;
  const config = configFile ? ` --config ${configFile}` : '';
  return (
    'A record that is at the source but is no event for the mappings (no birth or death evidence, a stillbirth, ' +
    "a merged duplicate) leaves no row, nor does one last changed before the source's go-live " +
    `(sources[].poll.since or sinceDays), which is not read: \`opencrvs-bridge map${config} ${args}\` reads it ` +
    'from the source and says why it was not taken (nothing is sent).'
  );
}

/**
 * Identifiers (an MRN, an OpenMRS identifier such as 10001-6) are personal data, which the ledger indexes
 * nowhere (the declarations it holds until store.payloadRetentionHours carry them, as opaque payloads), so it
 * cannot be searched by one: the source can, and gives the record's id, or the tracking id
 * written back on it (sources/identifier-lookup.ts, as the admin page's Find help says it).
 */
function identifierText(find: string, config: BridgeConfig): string {
  const { lookups, records, trackingSystems, examples } = identifierLookup(config.sources, encodeURIComponent(find));
  const tracking = trackingSystems.length
    ? `; once delivered, that Patient also carries the OpenCRVS tracking ID, written back as its identifier of system ${trackingSystems.join(' or ')}`
    : '';
  return (
    `Identifiers (${examples}) are not searched: they are personal data, which the ledger does not index. Find the record's id at the source ` +
    `(${lookups.join(', or ')}) and look up ${records.join(' or ')}${tracking}.`
  );
}

/** The event's write-back job (the tracking id written back to its source), read without writing anything. */
function writeBackOf(path: string, rowId: number): WriteBackItem | undefined {
  const store = new WriteBackStore(path, { readOnly: true });
  try {
    return store.get(rowId);
  } finally {
    store.close();
  }
}

/**
 * The job as `--json` gives it: its state as the admin page names it, no lease internals. Tracking ids are
 * OpenCRVS's, not the person's identifiers; `target` is configuration (uids, the identifier system).
 */
function writeBackView(item: WriteBackItem, target: string | undefined): Record<string, unknown> {
  return {
    state: item.outcome ?? 'pending',
    target: target ?? null,
    trackingId: item.trackingId,
    earlierTrackingIds: item.earlierTrackingIds,
    attempts: item.attempts,
    lastError: item.lastError,
    note: item.note,
    nextAttemptAt: item.outcome ? null : item.nextAttemptAt,
    doneAt: item.doneAt,
  };
}

function writeBackText(item: WriteBackItem, target: string | undefined): string {
  const details = [
    `  Tracking id: ${item.trackingId}`,
    `  Written to: ${target ?? 'nowhere now: write-back is not configured for this source'}`,
  ];
  if (item.earlierTrackingIds.length)
    details.push(
      `  Earlier tracking ids of this event (delivered again under a new one): ${item.earlierTrackingIds.join(', ')}`,
    );
  if (item.note) details.push(`  Note: ${item.note.replace(/\s+/g, ' ')}`);
  return [writeBackState(item), ...details].join('\n');
}

function writeBackState(item: WriteBackItem): string {
  const attempts = `${item.attempts} attempt${item.attempts === 1 ? '' : 's'}`;
  const error = item.lastError ? `: ${item.lastError.replace(/\s+/g, ' ')}` : '';
  const head = 'Write-back of the tracking id:';
  if (item.outcome === null) {
    const next = `next ${isoSeconds(item.nextAttemptAt)}`;
    return `${head} pending, ${attempts} so far, ${next}${item.lastError ? `; last error${error}` : ''}`;
  }
  const at = item.doneAt === null ? '' : ` (${isoSeconds(item.doneAt)})`;
  if (item.outcome === 'abandoned') return `${head} abandoned after ${attempts}${at}${error}`;
  return `${head} ${item.outcome === 'written' ? 'written' : 'already held by the source'}${at}`;
}

function parseStates(value: string | undefined): LedgerState[] | undefined {
  if (value === undefined) return [];
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const valid = parts.filter((p): p is LedgerState => (LEDGER_STATES as readonly string[]).includes(p));
  return valid.length === parts.length && parts.length > 0 ? valid : undefined;
}

/**
 * What to do depends on the hold: OpenCRVS out of reach (an outage) is no credentials problem, and sending
 * the operator to the client secret during one wastes the outage and may break a working client.
 */
function holdBanner(hold: HoldState): string {
  const next = hold.outage
    ? 'Nothing is being sent; no row is dead-lettered and no attempt is counted. OpenCRVS is asked (without ' +
      'sending any row) every delivery.holdProbeSeconds, and delivery resumes by itself once it answers: check ' +
      'that OpenCRVS is up and that this host reaches it (network, DNS, proxy, firewall).'
    : hold.kind === 'unknown-office' && hold.office
      ? `Nothing is being sent; no row is dead-lettered. OpenCRVS does not know office ${hold.office}, ` +
        `${hold.routingKeys ? `to which ${hold.routingKeys.join(', ')} ${hold.routingKeys.length === 1 ? 'routes' : 'route'}` : 'chosen by the routing table'}: ` +
        'correct that route in the config and restart; the probe maps the held row again and re-tries it.'
      : 'Nothing is being sent; no row is dead-lettered. Fix the credentials, scopes or office, and delivery ' +
        'resumes by itself at the next probe.';
  return `DELIVERY HELD ${heldSince(hold)}\n${next}\n`;
}

/** Everything but the payload (personal data), the lock internals, and a dismissal's reason unless asked. */
function publicView(row: LedgerRow, showReasons: boolean): Record<string, unknown> {
  const { payload: _payload, payloadHash: _hash, ...rest } = row;
  return {
    ...rest,
    countedAttempts: countedAttempts(row),
    skipReason: skipReasonText(row.skipReason, showReasons),
    hasPayload: row.payload !== null,
  };
}

/**
 * A dismissal's reason is free text an operator typed, and may name the patient whatever the prompt asks:
 * by default only its length, as the admin API gives it without admin.showPersonalData (http/admin/
 * views.ts). A terminal's output is pasted into tickets and chats more often than the ledger file is read.
 * Reasons the bridge wrote itself are shown as stored.
 */
function skipReasonText(skipReason: string | null, showReasons: boolean): string | null {
  if (showReasons || skipReason === null || !isDismissed(skipReason)) return skipReason;
  const length = skipReason.length - `${DISMISSED_PREFIX}: `.length;
  return `${DISMISSED_PREFIX}: (reason hidden, ${length} characters: may name the patient; --show-reasons prints it)`;
}

function lastErrorText(row: LedgerRow, showReasons: boolean): string {
  if (row.state === 'skipped') {
    const reason = skipReasonText(row.skipReason, showReasons);
    return reason ? `skipped: ${reason}` : '';
  }
  if (row.withdrawnReason) {
    const when =
      row.state === 'delivered' || row.state === 'delivered-pending' ? 'after notification' : 'while sending';
    return `withdrawn in the source ${when}: ${row.withdrawnReason}`;
  }
  if (row.lastError) return errorText(row.lastError);
  return row.updatesAfterNotification ? `updated ×${row.updatesAfterNotification} after notification` : '';
}

function errorText(error: LedgerError, width = MESSAGE_WIDTH): string {
  const status = error.status ? ` ${error.status}` : '';
  const text = `${error.classification}/${error.kind}${status}: ${error.message.replace(/\s+/g, ' ')}`;
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function table(rows: LedgerRow[], showReasons: boolean): string {
  return columns(
    ['ID', 'STATE', 'EVENT', 'SOURCE REF', 'ATTEMPTS', 'TRACKING', 'UPDATED', 'LAST ERROR'],
    rows.map((r) => [
      String(r.id),
      r.state,
      r.eventType,
      `${r.sourceId}:${r.sourceRef}`,
      attemptsText(r),
      trackingText(r),
      isoSeconds(r.updatedAt),
      lastErrorText(r, showReasons),
    ]),
  );
}

/**
 * `7 (2 counted)`: of seven attempts, five never reached OpenCRVS (a gateway's 503, a timeout), which end a
 * row by delivery.maxAgeHours only. Alone, "7" read as past a maxAttempts of 5 on a row still waiting.
 */
export function attemptsText(row: Pick<LedgerRow, 'attempts' | 'unreachedAttempts'>): string {
  const counted = countedAttempts(row);
  return counted === row.attempts ? String(row.attempts) : `${row.attempts} (${counted} counted)`;
}

/**
 * The create step gives a tracking id before the NOTIFY goes: on a row that was not delivered it names a
 * draft no registrar sees, which read alone looks like "it arrived".
 */
function trackingText(row: LedgerRow): string {
  if (!row.trackingId) return '';
  return row.state === 'delivered' || row.state === 'delivered-pending'
    ? row.trackingId
    : `${row.trackingId} (not notified)`;
}

/**
 * ATTEMPT numbers every attempt of the budget, as ATTEMPTS totals them: the ones that never reached OpenCRVS
 * say `(not counted)`, so that a row's `7 (2 counted)` reads the same in its list, not as 7 of a limit of 5.
 */
function attemptsTable(attempts: AttemptRow[]): string {
  if (attempts.length === 0) return 'No delivery attempt yet.';
  return columns(
    ['ATTEMPT', 'STEP', 'OUTCOME', 'FINISHED', 'ERROR'],
    attempts.map((a) => [
      a.unreached ? `${a.attempt} (not counted)` : String(a.attempt),
      a.step,
      a.outcome,
      isoSeconds(a.finishedAt),
      a.error ? errorText(a.error) : '',
    ]),
  );
}

/** Left-aligned columns as wide as their widest cell; the last column is left ragged. */
function columns(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((line) => (line[i] ?? '').length)));
  const format = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [format(header), ...body.map(format)].join('\n');
}
