// `opencrvs-bridge write-backs`: the jobs that write OpenCRVS tracking ids back to the source records,
// and the one operator action on them, as the admin page has it: re-queue an abandoned job once its cause
// is fixed. Without the admin page (no admin.token, no running serve) this is the way to it; the
// container image has no sqlite3. Only the write_backs table is touched, through the same conditional
// re-queue as the admin API, so it is safe beside a running serve: its runner takes the job at its next
// tick (delivery.pollIntervalMs), and without serve the next `sync --once` does.
import type { Command } from 'commander';
import type { BridgeConfig } from '../config/index.js';
import { openLedger } from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';
// Not the index: it brings the write-back targets, and with them the source clients.
import { type WriteBackItem, WriteBackStore } from '../sources/writeback/store.js';
import { writesBack } from '../sources/writeback/writes-back.js';
import {
  buildOrReport,
  configuredSourcesText,
  configWithLedgerOrReport,
  LOCAL_ONLY,
  reportLedgerInUse,
  usingLedger,
} from './options.js';
import { processLogger } from './runtime.js';

interface WriteBacksOptions {
  config?: string;
  source?: string;
  requeue?: string[];
  allAbandoned?: boolean;
}

/** Jobs listed at most (newest first), and re-queued at most by one --all-abandoned. */
const LIST_LIMIT = 100;
const REQUEUE_ALL_LIMIT = 10_000;
const PAGE = 500;

const USAGE =
  'usage: opencrvs-bridge write-backs [--source ID]   or   write-backs --requeue ID…   or   write-backs --all-abandoned [--source ID]\n' +
  '(row ids are positive integers, as `sync` prints them: #41 is 41)';

export function registerWriteBacks(program: Command): void {
  program
    .command('write-backs')
    .description(
      "List the write-back jobs not written yet (pending or abandoned: the tracking id not back in the source record), or put abandoned ones back in the queue once their cause is fixed, as the admin page's Re-queue does. Exits 1 if any job asked for was not re-queued.",
    )
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option('--source <id>', 'only the jobs of this source')
    .option('--requeue <ids...>', 're-queue the abandoned jobs of these ledger rows')
    .option('--all-abandoned', `re-queue every abandoned job (of --source), at most ${REQUEUE_ALL_LIMIT}`)
    .action((options: WriteBacksOptions) => runWriteBacks(options));
}

async function runWriteBacks(options: WriteBacksOptions): Promise<void> {
  const ids = (options.requeue ?? []).map((id) => Number(id.replace(/^#/, '')));
  const badIds = ids.some((id) => !Number.isInteger(id) || id < 1);
  // --source narrows a listing or --all-abandoned; with row ids it would be a second, unchecked filter.
  if (badIds || (options.requeue && (options.allAbandoned || options.source !== undefined))) {
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  const config = configWithLedgerOrReport(options.config, LOCAL_ONLY);
  if (!config) return;
  if (options.source !== undefined && !config.sources.some((s) => s.id === options.source)) {
    console.error(`write-backs: no source "${options.source}" in the config (${configuredSourcesText(config)})`);
    process.exitCode = 2;
    return;
  }
  // A re-queue is an operator action: its audit line goes to standard error, as serve's goes to its log.
  const acting = options.requeue !== undefined || options.allAbandoned === true;
  const logger = acting ? buildOrReport(() => processLogger(config, { toStderr: true })) : undefined;
  if (acting && !logger) return;
  await usingLedger('write-backs', config.store.path, () => writeBacksIn(config, options, ids, logger));
}

/** Lists the jobs, or re-queues them (`logger` given: the audit lines). */
function writeBacksIn(
  config: BridgeConfig,
  options: WriteBacksOptions,
  ids: number[],
  logger: Logger | undefined,
): void {
  // Opened first: it creates or upgrades the tables, and refuses a ledger a running older version holds.
  let ledger: ReturnType<typeof openLedger>;
  try {
    ledger = openLedger(config.store.path, { payloadRetentionHours: config.store.payloadRetentionHours });
  } catch (err) {
    reportLedgerInUse('write-backs', err);
    return;
  }
  const store = new WriteBackStore(config.store.path);
  try {
    if (logger && options.requeue) requeueRows(store, config, ids, logger);
    else if (logger) requeueAbandoned(store, config, options.source, logger);
    else list(store, config, options.source);
  } finally {
    store.close();
    ledger.close();
  }
}

function list(store: WriteBackStore, config: BridgeConfig, sourceId: string | undefined): void {
  const jobs = store.search({ states: ['pending', 'abandoned'], sourceId, limit: LIST_LIMIT + 1 });
  if (jobs.length === 0) {
    console.log(nothingListed(config, sourceId));
    return;
  }
  for (const job of jobs.slice(0, LIST_LIMIT)) console.log(jobLine(job));
  if (jobs.length > LIST_LIMIT) console.log(`… and more: the ${LIST_LIMIT} newest are shown (narrow with --source)`);
  if (jobs.some((job) => job.outcome === 'abandoned'))
    console.log('Re-queue an abandoned one after fixing its cause: opencrvs-bridge write-backs --requeue ID');
}

/**
 * No job: where write-back is not configured, said so. "None pending or abandoned" read as "every tracking
 * id is back in the EMR" where none is ever written.
 */
function nothingListed(config: BridgeConfig, sourceId: string | undefined): string {
  const sources = config.sources.filter((s) => sourceId === undefined || s.id === sourceId);
  if (sources.some(writesBack)) return 'No write-back job pending or abandoned.';
  const where = sourceId === undefined ? 'for any source' : `for source ${sourceId}`;
  return `Write-back is not configured ${where} (sources[].writeBack, docs/write-back.md): no tracking id is written back, so there is no job.`;
}

/** One job, as `sync` names failures: the row, the source, the state, the attempts and the error as stored
 * (it may name the record's reference: command output, not a log, docs/deployment.md). */
function jobLine(job: WriteBackItem): string {
  const attempts = `${job.attempts} attempt${job.attempts === 1 ? '' : 's'}`;
  const state =
    job.outcome === 'abandoned'
      ? `abandoned after ${attempts}`
      : `pending, ${attempts} so far, next ${new Date(job.nextAttemptAt).toISOString()}`;
  return `  #${job.rowId} ${job.sourceId} ${state}${job.lastError ? ` — ${job.lastError.slice(0, 160)}` : ''}`;
}

/** Why this job cannot be re-queued (the admin API's 404 and 409 answers), or undefined. */
function refusal(job: WriteBackItem | undefined, rowId: number, config: BridgeConfig): string | undefined {
  if (!job) return `no write-back job for ledger row ${rowId}`;
  const state = job.outcome ?? 'pending';
  if (state !== 'abandoned') return `write-back is ${state}, not abandoned: only abandoned jobs re-queue`;
  // The runner would abandon it again at once ("write-back no longer configured").
  const source = config.sources.find((s) => s.id === job.sourceId);
  if (!source || !writesBack(source))
    return `source ${job.sourceId} has no write-back configured: re-queueing would not help`;
  return undefined;
}

/** The conditional re-queue ("still abandoned") and its audit line, as the admin API writes them. */
function requeueOne(store: WriteBackStore, job: WriteBackItem, logger: Logger): boolean {
  if (!store.requeue(job.rowId, Date.now())) return false;
  logger.info(
    { rowId: job.rowId, source: job.sourceId, attemptsBefore: job.attempts, command: 'write-backs' },
    'write-back job re-queued by admin',
  );
  return true;
}

function requeueRows(store: WriteBackStore, config: BridgeConfig, ids: number[], logger: Logger): void {
  const requeued: number[] = [];
  const skipped: string[] = [];
  for (const id of new Set(ids)) {
    const job = store.get(id);
    const why = refusal(job, id, config);
    if (why || !job) skipped.push(`Skipped ${id}: ${why}`);
    else if (requeueOne(store, job, logger)) requeued.push(id);
    else skipped.push(`Skipped ${id}: its write-back changed meanwhile`);
  }
  report(requeued);
  for (const line of skipped) console.log(line);
  if (skipped.length > 0) process.exitCode = 1;
}

function requeueAbandoned(
  store: WriteBackStore,
  config: BridgeConfig,
  sourceId: string | undefined,
  logger: Logger,
): void {
  const configured = config.sources.filter((s) => writesBack(s)).map((s) => s.id);
  if (sourceId !== undefined && !configured.includes(sourceId)) {
    console.log(`Nothing re-queued: source ${sourceId} has no write-back configured: re-queueing would not help.`);
    process.exitCode = 1;
    return;
  }
  const requeued: number[] = [];
  for (const source of sourceId === undefined ? configured : [sourceId]) {
    // A re-queued job is abandoned no longer: each page is the next abandoned ones.
    while (requeued.length < REQUEUE_ALL_LIMIT) {
      const page = store.search({ states: ['abandoned'], sourceId: source, limit: PAGE });
      const done = page.slice(0, REQUEUE_ALL_LIMIT - requeued.length).filter((job) => requeueOne(store, job, logger));
      requeued.push(...done.map((job) => job.rowId));
      if (page.length < PAGE || done.length === 0) break;
    }
  }
  report(requeued);
  if (requeued.length >= REQUEUE_ALL_LIMIT) console.log('More may be left: run write-backs --all-abandoned again.');
  // Jobs of sources without write-back now are said, so they are not thought re-queued.
  const left = store
    .counts()
    .filter((c) => c.state === 'abandoned' && !configured.includes(c.sourceId))
    .map((c) => `${c.count} of ${c.sourceId}`);
  if (sourceId === undefined && left.length > 0)
    console.log(`Left abandoned: ${left.join(', ')} (no write-back configured for it now).`);
}

function report(requeued: number[]): void {
  console.log(
    requeued.length
      ? `Re-queued ${requeued.length} write-back(s): ${requeued.join(', ')}. serve runs them at its next tick; without serve, the next sync --once does.`
      : 'Nothing re-queued.',
  );
}
