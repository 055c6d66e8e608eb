import type { Command } from 'commander';
import { Bridge, type SyncSummary, syncDone } from '../app.js';
import { dhis2SinceProblem, isSinceValue, MAX_TIMER_SECONDS } from '../config/index.js';
import { heldSince, isCorruptCode, type WriteFailure } from '../ledger/index.js';
import { errorLine } from '../observability/crash.js';
import { isOpenCrvsError } from '../opencrvs/index.js';
import {
  buildOrReport,
  configuredSourcesText,
  loadConfigForLog,
  logStorePathWarning,
  reportLedgerInUse,
  reportUnusableLedger,
} from './options.js';
import { listenForSignals, openLeased, processLogger } from './runtime.js';

function printSummary(summary: SyncSummary): void {
  const byState = new Map<string, number>();
  for (const row of summary.rows) byState.set(row.state, (byState.get(row.state) ?? 0) + 1);
  console.log(`resources read: ${summary.report.resources}; events recorded or changed: ${summary.rows.length}`);
  const touched = new Set(summary.rows.map((row) => row.id));
  const queuedBefore = summary.delivered.filter((id) => !touched.has(id)).length;
  if (summary.delivered.length > 0)
    console.log(
      `delivered in this pass: ${summary.delivered.length}` +
        (queuedBefore > 0 ? ` (${queuedBefore} queued by an earlier pass or a replay)` : ''),
    );
  if (summary.held) {
    console.log(`DELIVERY HELD ${heldSince(summary.held)}; nothing is sent until it is fixed`);
  }
  if (summary.deliverySkipped)
    console.log(
      `DELIVERY SKIPPED: ${summary.deliverySkipped}; the events found are recorded with those it gave last ` +
        'time and are checked and sent by the next pass it answers',
    );
  for (const [state, count] of byState) console.log(`  ${state}: ${count}`);
  for (const row of summary.rows.filter((r) => r.state !== 'delivered' && r.state !== 'skipped')) {
    const error = row.lastError ? ` — ${row.lastError.classification}: ${row.lastError.message.slice(0, 160)}` : '';
    console.log(`  #${row.id} ${row.eventType} ${row.sourceRef} ${row.state}${error}`);
  }
  if (summary.earlier.length > 0) {
    const count = (...states: string[]) => summary.earlier.filter((row) => states.includes(row.state)).length;
    const inFlight = count('delivering');
    // What to do depends on what is there: only dead rows are replayed; the others wait their turn.
    const look = count('dead') > 0 ? ' (see `ledger --status dead`; replay after fixing the cause)' : '';
    const waiting =
      count('failed', 'pending') > 0
        ? ' (`ledger --status pending,failed` lists them; each is sent when due, nothing to do)'
        : '';
    console.log(
      `earlier events still not delivered: ${count('dead')} dead, ${count('failed')} failing` +
        (count('pending') > 0 ? `, ${count('pending')} waiting` : '') +
        (inFlight > 0 ? `, ${inFlight} being delivered by another process or left by a stopped one` : '') +
        (look || waiting),
    );
  }
  printWriteBacks(summary);
  if (summary.timedOut)
    console.log('the pass reached --timeout before it finished: the next pass goes on (raise it for a first sync)');
  for (const [id, at] of Object.entries(summary.rereadFrom))
    console.log(
      `read again from --since up to ${at} only for ${id}: go on with sync --once --source ${id} --since ${at}`,
    );
  if (summary.failedSources.length > 0) {
    console.log('sources that could not be polled:');
    for (const id of summary.failedSources) console.log(`  ${id}: ${summary.sourceErrors[id] ?? 'failed'}`);
  }
  console.log(`result: ${resultOf(summary)}`);
}

/**
 * What the write-backs of this pass did, failures by ledger row with their error (the call, the status,
 * DHIS2's codes: no personal data). They change no delivery, so no exit status either.
 */
function printWriteBacks(summary: SyncSummary): void {
  const report = summary.writeBacks;
  if (!report || report.tried === 0) return;
  const counts: Array<[number, string]> = [
    [report.written, 'written'],
    [report.already, 'already there'],
    [report.failing, 'failing (tried again at a later pass)'],
    [report.abandoned, 'abandoned'],
    [report.cutOff, 'cut off at --timeout (tried again at the next pass, the attempt not counted)'],
  ];
  const said = counts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  console.log(`write-backs to the sources: ${said.join(', ')}`);
  for (const failure of report.failures) {
    const attempts = `${failure.attempts} attempt${failure.attempts === 1 ? '' : 's'}`;
    console.log(
      `  #${failure.rowId} ${failure.sourceId} ${failure.state} after ${attempts} — ${failure.error.slice(0, 160)}`,
    );
  }
  if (report.abandoned > 0)
    console.log(
      '  an abandoned write-back stays so until re-queued after fixing its cause (admin page, Write-backs; ' +
        'or opencrvs-bridge write-backs --requeue ID); ' +
        'the events are delivered either way, and the exit status does not count it',
    );
}

/** The last line of the summary: why the exit status is 1, each reason once. */
function resultOf(summary: SyncSummary): string {
  if (summary.ok) return 'everything found was delivered';
  const reasons: string[] = [];
  const notDone = [...summary.rows.filter((row) => !syncDone(row)), ...summary.earlier];
  if (summary.deliverySkipped) reasons.push('delivery skipped: OpenCRVS could not confirm the routing table');
  // Rows waiting to be sent are what a skipped delivery leaves: no second reason for them.
  const waitingOnly = summary.deliverySkipped && notDone.every((row) => row.state === 'pending');
  if (summary.held || (notDone.length > 0 && !waitingOnly)) reasons.push('something is dead, held or still failing');
  if (summary.failedSources.length > 0) reasons.push('a source could not be polled');
  if (Object.keys(summary.rereadFrom).length > 0) reasons.push('the reading from --since did not reach the watermark');
  if (summary.timedOut) reasons.push('the pass reached --timeout');
  if (summary.storeFailure) reasons.push(storeFailureText(summary.storeFailure));
  return reasons.length > 0 ? reasons.join('; ') : 'something is dead, held or still failing';
}

/** A storage failure the ledger kept, as serve's /readyz `store` names it, and where the runbook says what to do. */
function storeFailureText(failure: WriteFailure): string {
  const met = `(${failure.code}: ${failure.message})`;
  return isCorruptCode(failure.code)
    ? `the ledger is corrupt ${met}: restore the last backup (runbook: "Ledger corrupt")`
    : `the ledger refused a write ${met}: free space or make it writable (runbook: "Ledger disk full or unwritable")`;
}

export function registerSync(program: Command): void {
  program
    .command('sync')
    .description(
      'one poll-and-deliver pass for external schedulers (cron, Kubernetes CronJob); exit 0 when everything found was delivered; 1 when anything is dead, failing, waiting or locked (rows of earlier passes included), when delivery is held, when a source could not be polled, or when the pass was stopped (a signal, --timeout) or failed, or when a --since reading did not reach the watermark, or when OpenCRVS could not confirm the routing table, neither before polling nor when asked again after it (the events found are recorded on its earlier answers and sent by a later pass), or when the ledger failed a read or write (damaged pages, a full disk: what /readyz store reports under serve); 2 for wrong arguments or configuration. Write-backs of the tracking id that fail or are abandoned are in the summary but change no delivery, so no exit status. It reads only the secrets it presents (opencrvs, sources[].auth): opening no listener, it needs neither admin.token nor the subscription secrets',
    )
    .requiredOption('--once', 'run one pass and exit (the only mode; `serve` runs continuously)')
    .option('--source <id>', 'only this source (repeatable)', (value: string, all: string[] = []) => [...all, value])
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option('--json', 'print the summary as JSON (logs go to standard error either way)')
    .option(
      '--timeout <seconds>',
      `how long the pass (polling, delivery and the write-backs at its end) may take before it gives up (at most ${MAX_TIMER_SECONDS})`,
      '120',
    )
    .option(
      '--since <date>',
      'also read again from this date or date-time where the watermark is later, never before poll.since (as poll.since: no zone is UTC for FHIR; DHIS2 local time for DHIS2, no zone allowed): after widening a mapping or a source filter, or restoring the ledger; events already recorded keep their rows and are not sent twice',
    )
    .action(
      async (options: { source?: string[]; config?: string; json?: boolean; timeout: string; since?: string }) => {
        // The arguments that need no configuration first, as commander checks its own: nothing read yet.
        if (options.since !== undefined && !isSinceValue(options.since)) {
          console.error(
            `sync: --since must be an ISO 8601 date or date-time (2026-01-31, 2026-01-31T00:00:00Z), not "${options.since}"`,
          );
          process.exitCode = 2;
          return;
        }
        const timeoutSeconds = Number(options.timeout);
        if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
          console.error(`sync: --timeout must be a number of seconds above 0, not "${options.timeout}"`);
          process.exitCode = 2;
          return;
        }
        if (timeoutSeconds > MAX_TIMER_SECONDS) {
          console.error(
            `sync: --timeout must be at most ${MAX_TIMER_SECONDS} seconds (about 24 days), not "${options.timeout}"`,
          );
          process.exitCode = 2;
          return;
        }
        // The secrets the pass presents (OpenCRVS's, the sources'), not those presented to a listener it never
        // opens (the admin token, the subscriptions'): a CronJob is given only what it uses.
        const config = loadConfigForLog(options.config, 'outbound');
        if (!config) return;
        // Standard output is the summary alone, for a person or for --json: logs go to standard error (a
        // cron mail or a CronJob's log still holds both).
        const logger = buildOrReport(() => processLogger(config, { toStderr: true }));
        if (!logger) return;
        // Whenever the configuration was read, before the arguments checked against it: a cron job whose
        // --source names no source still says which ledger its fixed line will use (and how to name it).
        logStorePathWarning(config, logger);
        // The rule poll.since follows on a DHIS2 source (config/load.ts).
        const dhis2 = config.sources.filter(
          (s) => s.kind === 'dhis2' && (!options.source || options.source.includes(s.id)),
        );
        const dhis2Problem = options.since === undefined ? undefined : dhis2SinceProblem(options.since);
        if (dhis2Problem && dhis2.length > 0) {
          console.error(
            `sync: --since for DHIS2 (${dhis2.map((s) => s.id).join(', ')}) ${dhis2Problem}; or sync the FHIR sources alone with --source`,
          );
          process.exitCode = 2;
          return;
        }
        const known = config.sources.map((s) => s.id);
        const unknown = (options.source ?? []).filter((id) => !known.includes(id));
        if (unknown.length > 0) {
          console.error(
            `sync: no source ${unknown.map((id) => `"${id}"`).join(', ')} in the config (${configuredSourcesText(config)})`,
          );
          process.exitCode = 2;
          return;
        }
        // A scheduler stops a pass with SIGTERM (a CronJob's deadline, a node drain): rows in flight are
        // handed back rather than left 'delivering' until their lock times out. As PID 1 a signal with no
        // handler would be ignored.
        const signals = listenForSignals(logger);
        let bridge: Bridge | undefined;
        try {
          bridge = await openLeased(
            () =>
              buildOrReport(
                () => new Bridge(config, { logger, http: false, schedule: false, worker: false, lease: 'sync' }),
              ),
            signals,
            logger,
          );
        } catch (err) {
          // A ledger that cannot be opened, or is damaged where the bridge reads at start: what to do, not a stack.
          if (reportUnusableLedger('sync failed', config.store.path, err)) return;
          // Another process uses this ledger: refused before the ledger was touched (its schema included).
          reportLedgerInUse('sync failed', err);
          return;
        }
        if (!bridge && signals.signal) {
          // Stopped while waiting for the lease: nothing was done.
          console.error(`sync stopped by ${signals.signal} before it started`);
          process.exitCode = 1;
        }
        if (!bridge) return;
        const stopped = signals.stopping(bridge);
        // Cut off at --timeout, rows still in flight are taken back at once (their calls cut off; a resend
        // carries the same transactionIds) rather than waited for: the deadline bounds the whole pass.
        let drainMs: number | undefined;
        try {
          const pass = bridge.syncOnce(options.source, { timeoutMs: timeoutSeconds * 1000, since: options.since });
          // After a signal the pass ends against a stopped bridge (its ledger closed): a stop, not a failure.
          const passed = pass.catch((err: unknown) => {
            if (signals.signal) return undefined;
            throw err;
          });
          const summary = await Promise.race([passed, stopped.then(() => undefined)]);
          if (!summary || signals.signal) {
            await stopped; // in-flight sends drained or handed back
            console.error(`sync stopped by ${signals.signal}: rows in flight were handed back; the next pass goes on`);
            process.exitCode = 1;
            return;
          }
          if (summary.timedOut) drainMs = 0;
          if (options.json) {
            console.log(
              JSON.stringify({
                ok: summary.ok,
                resources: summary.report.resources,
                delivered: summary.delivered,
                held: summary.held ?? null,
                deliverySkipped: summary.deliverySkipped ?? null,
                failedSources: summary.failedSources,
                rereadFrom: summary.rereadFrom,
                sourceErrors: summary.sourceErrors,
                timedOut: summary.timedOut,
                writeBacks: summary.writeBacks ?? null,
                storeFailure: summary.storeFailure
                  ? { code: summary.storeFailure.code, message: summary.storeFailure.message }
                  : null,
                earlier: summary.earlier.map((row) => ({ id: row.id, eventType: row.eventType, state: row.state })),
                events: summary.rows.map((row) => ({
                  id: row.id,
                  eventType: row.eventType,
                  sourceRef: row.sourceRef,
                  state: row.state,
                  trackingId: row.trackingId,
                  lastError: row.lastError,
                })),
              }),
            );
          } else {
            printSummary(summary);
          }
          process.exitCode = summary.ok ? 0 : 1;
        } catch (err) {
          // Damaged pages the pass met where nothing catches them (the rows of earlier passes it lists):
          // what to do, as when they are met at start, not SQLite's words alone.
          if (reportUnusableLedger('sync failed', config.store.path, err)) return;
          // OpenCRVS's words ("invalid_client") name no setting: these do.
          const refused = isOpenCrvsError(err) && err.operation === 'token' && err.kind === 'unauthorized';
          const hint = refused
            ? ' (OpenCRVS refused opencrvs.clientId and opencrvs.clientSecret at opencrvs.tokenUrl)'
            : '';
          console.error(`sync failed: ${errorLine(err)}${hint}`);
          process.exitCode = 1;
        } finally {
          await bridge.stop(drainMs === undefined ? {} : { drainMs });
        }
      },
    );
}
