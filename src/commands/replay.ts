// `opencrvs-bridge replay ID… | --dead`: puts dead rows back in the queue with a fresh retry budget,
// each mapped again from its source first (sources/replay.ts). The rows keep their transactionIds, so a
// replay can never create a second OpenCRVS event.
import type { Command } from 'commander';
import { Bridge } from '../app.js';
import type { BridgeConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import {
  buildOrReport,
  ledgerThereOrReport,
  loadConfigForLog,
  logStorePathWarning,
  reportLedgerInUse,
  usingLedger,
} from './options.js';
import { type RemoteReplay, replayThroughServe, ServeRefused } from './replay-remote.js';
import { processLogger } from './runtime.js';

interface ReplayOptions {
  config?: string;
  dead?: boolean;
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description(
      'Put dead rows back in the delivery queue (by id, or all of them with --dead), each mapped again from its source first (a failed row named by id, waiting out its backoff, is made due now instead, its attempts and transactionIds kept); beside a running serve, through its admin API (which refusing admin.token makes it exit 1, replaying nothing). Exits 1 if any row was skipped.',
    )
    .argument('[ids...]', 'ledger row ids (see `opencrvs-bridge ledger --status dead`)')
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option('--dead', 'replay every dead row')
    .action((ids: string[], options: ReplayOptions) => runReplay(ids, options));
}

async function runReplay(args: string[], options: ReplayOptions): Promise<void> {
  const ids = args.map(Number);
  if ((args.length === 0) === !options.dead || ids.some((id) => !Number.isInteger(id) || id < 1)) {
    console.error('usage: opencrvs-bridge replay ID… | --dead   (row ids are positive integers)');
    process.exitCode = 2;
    return;
  }
  const config = loadConfigForLog(options.config);
  if (!config) return;
  // The sources and OpenCRVS's location list are needed to map the records again; the running service
  // (or the next `sync`) delivers what is queued.
  const logger = buildOrReport(() => processLogger(config, { toStderr: true }));
  if (!logger) return;
  // A JSON line at warn like its other start warnings (the go-live's, a ledger created), as serve and sync
  // log it: a pipeline filtering on the level sees it, and a person reads one kind of line on stderr.
  logStorePathWarning(config, logger);
  if (!ledgerThereOrReport(config)) return;
  await usingLedger('replay', config.store.path, () => replayWith(config, logger, ids, options));
}

async function replayWith(config: BridgeConfig, logger: Logger, ids: number[], options: ReplayOptions): Promise<void> {
  let bridge: Bridge | undefined;
  try {
    bridge = buildOrReport(() => new Bridge(config, { logger, http: false, schedule: false, worker: false }));
  } catch (err) {
    // A running bridge (an older version) holds a ledger this one would upgrade: left as it is.
    reportLedgerInUse('replay', err);
    return;
  }
  if (!bridge) return;
  try {
    // Each row once: through serve, a row named twice was asked for twice, and the second answer (no longer
    // dead) made a replay that worked exit 1.
    const which = options.dead ? 'dead' : [...new Set(ids)];
    let remote: RemoteReplay;
    try {
      remote = await replayThroughServe(config, bridge.ledger, which);
    } catch (err) {
      if (!(err instanceof ServeRefused)) throw err;
      console.error(`replay: ${err.message}; see \`opencrvs-bridge ledger --status dead\` for what is still dead`);
      process.exitCode = 1;
      return;
    }
    if (remote.by === 'serve') console.log(`Replayed by the running ${remote.serve}.`);
    else if ('beside' in remote)
      console.error(
        `replay: ${remote.beside} uses this ledger, but ${remote.why}: replaying in this process, not ordered against serve's own reading of these records (docs/deployment.md §1)`,
      );
    const result = remote.by === 'serve' ? remote.result : await bridge.replay(which);
    console.log(
      result.requeued.length
        ? `Requeued ${result.requeued.length} row(s): ${result.requeued.join(', ')}`
        : 'Nothing requeued.',
    );
    for (const note of result.notes ?? []) console.log(`Note ${note.id}: ${note.note}`);
    for (const skipped of result.skipped) console.log(`Skipped ${skipped.id}: ${skipped.reason}`);
    if (result.leftDead) console.log(`${result.leftDead} more dead row(s) left: run replay --dead again.`);
    const hold = bridge.ledger.getHold();
    if (hold) console.log(`Note: delivery is held (${hold.reason}); replayed rows wait for it to resume.`);
    // Rows that could not be replayed are a failure the caller (a runbook, a cron job) should see.
    if (result.skipped.length > 0) process.exitCode = 1;
  } finally {
    await bridge.stop();
  }
}
