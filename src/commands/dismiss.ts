// `opencrvs-bridge dismiss ID… --reason TEXT`: closes dead rows a person decided must never go (a duplicate
// record, a test patient). Until then every `sync --once` exits 1 for them ("earlier events still not
// delivered"), and a scheduler's job stays red for good. Nothing is sent to or withdrawn from OpenCRVS.
import type { Command } from 'commander';
import { type Ledger, openLedger } from '../ledger/index.js';
import { configWithLedgerOrReport, reportLedgerInUse } from './options.js';

interface DismissOptions {
  config?: string;
  reason?: string;
}

/** Stored with the row and shown wherever it is listed: one line, short. */
const MAX_REASON_LENGTH = 200;

export function registerDismiss(program: Command): void {
  program
    .command('dismiss')
    .description(
      'Close dead rows that must never be delivered (a duplicate, a test record): they become skipped with your reason. A changed record in the source brings one back. Exits 1 if any row was not dead.',
    )
    .argument('<ids...>', 'ledger row ids (see `opencrvs-bridge ledger --status dead`)')
    .requiredOption(
      '--reason <text>',
      `why, for whoever reads the ledger later (one line, at most ${MAX_REASON_LENGTH} characters)`,
    )
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .action((ids: string[], options: DismissOptions) => runDismiss(ids, options));
}

function runDismiss(args: string[], options: DismissOptions): void {
  const ids = args.map(Number);
  const reason = options.reason?.trim() ?? '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  const badReason = !reason || reason.length > MAX_REASON_LENGTH || /[\u0000-\u001f\u007f]/.test(reason);
  if (ids.some((id) => !Number.isInteger(id) || id < 1) || badReason) {
    console.error(
      `usage: opencrvs-bridge dismiss ID… --reason TEXT   (row ids are positive integers; the reason is one line of 1 to ${MAX_REASON_LENGTH} characters)`,
    );
    process.exitCode = 2;
    return;
  }
  const config = configWithLedgerOrReport(options.config);
  if (!config) return;
  let ledger: Ledger;
  try {
    ledger = openLedger(config.store.path, { payloadRetentionHours: config.store.payloadRetentionHours });
  } catch (err) {
    // A running bridge (an older version) holds a ledger this one would upgrade: left as it is.
    reportLedgerInUse('dismiss', err);
    return;
  }
  try {
    const result = ledger.dismiss(ids, reason);
    console.log(
      result.dismissed.length
        ? `Dismissed ${result.dismissed.length} row(s): ${result.dismissed.join(', ')}`
        : 'Nothing dismissed.',
    );
    for (const id of result.dismissed) {
      const row = ledger.get(id);
      // The row may have an OpenCRVS event (created, or a NOTIFY left undecided): it stays there.
      if (row?.trackingId)
        console.log(`Note ${id}: OpenCRVS keeps its event ${row.trackingId}; nothing was withdrawn.`);
    }
    for (const refused of result.refused) console.log(`Not dismissed ${refused.id}: ${refused.reason}`);
    if (result.refused.length > 0) process.exitCode = 1;
  } finally {
    ledger.close();
  }
}
