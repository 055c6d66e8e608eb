// `opencrvs-bridge replay ID… | --dead`: puts dead rows back in the queue with a fresh retry budget.
// The rows keep their transactionIds, so a replay can never create a second OpenCRVS event. Rows
// without a payload (invalid mapping output) need the source re-read and re-mapped; until the sources
// wire that in, they are reported as skipped.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { openLedger } from '../ledger/index.js';
import { loadConfigOrReport } from './options.js';

interface ReplayOptions {
  config?: string;
  dead?: boolean;
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('Put dead rows back in the delivery queue (by id, or all of them with --dead).')
    .argument('[ids...]', 'ledger row ids (see `opencrvs-bridge ledger --status dead`)')
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option('--dead', 'replay every dead row')
    .action((ids: string[], options: ReplayOptions) => runReplay(ids, options));
}

function runReplay(args: string[], options: ReplayOptions): void {
  const ids = args.map(Number);
  if ((args.length === 0) === !options.dead || ids.some((id) => !Number.isInteger(id) || id < 1)) {
    console.error('usage: opencrvs-bridge replay ID… | --dead   (row ids are positive integers)');
    process.exitCode = 2;
    return;
  }
  const config = loadConfigOrReport(options.config);
  if (!config) return;
  if (!existsSync(config.store.path)) {
    console.error(`No ledger at ${config.store.path}.`);
    process.exitCode = 2;
    return;
  }
  const ledger = openLedger(config.store.path, { payloadRetentionHours: config.store.payloadRetentionHours });
  try {
    const result = ledger.replay(options.dead ? 'dead' : ids);
    console.log(
      result.requeued.length
        ? `Requeued ${result.requeued.length} row(s): ${result.requeued.join(', ')}`
        : 'Nothing requeued.',
    );
    for (const skipped of result.skipped) console.log(`Skipped ${skipped.id}: ${skipped.reason}`);
    const hold = ledger.getHold();
    if (hold) console.log(`Note: delivery is held (${hold.reason}); replayed rows wait for it to resume.`);
    // Named rows that could not be replayed are a failure the caller should see.
    if (!options.dead && result.skipped.length > 0) process.exitCode = 1;
  } finally {
    ledger.close();
  }
}
