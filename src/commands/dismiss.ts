// `opencrvs-bridge dismiss ID… --reason TEXT`: closes dead rows a person decided must never go (a duplicate
// record, a test patient). Until then every `sync --once` exits 1 for them ("earlier events still not
// delivered"), and a scheduler's job stays red for good. Nothing is sent to or withdrawn from OpenCRVS.
// `--undo` takes a dismissal back (a wrong row id, a patient who was real after all): the row is dead
// again, and `replay` is the way on from there, as for any dead row.
import type { Command } from 'commander';
import type { BridgeConfig } from '../config/index.js';
import {
  checkDismissReason,
  dismissalNote,
  type Ledger,
  MAX_DISMISS_REASON_LENGTH,
  openLedger,
} from '../ledger/index.js';
import { configWithLedgerOrReport, LOCAL_ONLY, reportLedgerInUse, usingLedger } from './options.js';

interface DismissOptions {
  config?: string;
  reason?: string;
  undo?: boolean;
}

const USAGE =
  'usage: opencrvs-bridge dismiss ID… --reason TEXT   or   opencrvs-bridge dismiss --undo ID…\n' +
  `(row ids are positive integers; the reason is one line of 1 to ${MAX_DISMISS_REASON_LENGTH} characters, and --undo takes none)`;

export function registerDismiss(program: Command): void {
  program
    .command('dismiss')
    .description(
      'Close dead rows that must never be delivered (a duplicate, a test record): they become skipped with your reason. A changed record in the source brings one back; --undo makes a dismissed row dead again. Exits 1 if any row was not dead (not dismissed, with --undo).',
    )
    .argument('<ids...>', 'ledger row ids (see `opencrvs-bridge ledger --status dead`)')
    .option(
      '--reason <text>',
      `why, for whoever reads the ledger later (one line, at most ${MAX_DISMISS_REASON_LENGTH} characters); required unless --undo`,
    )
    .option(
      '--undo',
      'make dismissed rows dead again, with the error they died with; replay them afterwards to send them',
    )
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .action((ids: string[], options: DismissOptions) => runDismiss(ids, options));
}

async function runDismiss(args: string[], options: DismissOptions): Promise<void> {
  const ids = args.map(Number);
  const badIds = ids.some((id) => !Number.isInteger(id) || id < 1);
  // An undo with a reason is a dismissal typed with --undo by mistake, or the other way round: say so.
  const checked = options.undo ? undefined : checkDismissReason(options.reason ?? '');
  if (badIds || (options.undo && options.reason !== undefined) || (checked && 'problem' in checked)) {
    console.error(checked && 'problem' in checked && !badIds ? `${checked.problem}\n${USAGE}` : USAGE);
    process.exitCode = 2;
    return;
  }
  const config = configWithLedgerOrReport(options.config, LOCAL_ONLY);
  if (!config) return;
  const reason = checked && 'reason' in checked ? checked.reason : undefined;
  await usingLedger('dismiss', config.store.path, () => dismissIn(config, ids, reason));
}

/** Dismisses `ids` with `reason`, or undoes their dismissal without one. */
function dismissIn(config: BridgeConfig, ids: number[], reason: string | undefined): void {
  let ledger: Ledger;
  try {
    ledger = openLedger(config.store.path, { payloadRetentionHours: config.store.payloadRetentionHours });
  } catch (err) {
    // A running bridge (an older version) holds a ledger this one would upgrade: left as it is.
    reportLedgerInUse('dismiss', err);
    return;
  }
  try {
    if (reason !== undefined) dismiss(ledger, ids, reason);
    else undo(ledger, ids);
  } finally {
    ledger.close();
  }
}

function dismiss(ledger: ReturnType<typeof openLedger>, ids: number[], reason: string): void {
  // Asked before: a row whose call was taken with its answer lost (a single call records no event id until
  // it answers) may be registered all the same, and the person dismissing it should know.
  const mayStand = new Set(ids.filter((id) => ledger.notifyMayStand(id)));
  const result = ledger.dismiss(ids, reason);
  console.log(
    result.dismissed.length
      ? `Dismissed ${result.dismissed.length} row(s): ${result.dismissed.join(', ')}`
      : 'Nothing dismissed.',
  );
  for (const id of result.dismissed) {
    const row = ledger.get(id);
    // The row may have an OpenCRVS event (created, or a NOTIFY left undecided): it stays there.
    const note = dismissalNote(row?.trackingId, mayStand.has(id));
    if (note) console.log(`Note ${id}: ${note}`);
  }
  for (const refused of result.refused) console.log(`Not dismissed ${refused.id}: ${refused.reason}`);
  if (result.refused.length > 0) process.exitCode = 1;
}

function undo(ledger: ReturnType<typeof openLedger>, ids: number[]): void {
  const result = ledger.undismiss(ids);
  console.log(
    result.restored.length
      ? `Dead again ${result.restored.length} row(s): ${result.restored.join(', ')}. Replay them to send them (opencrvs-bridge replay ID…).`
      : 'Nothing undone.',
  );
  for (const refused of result.refused) console.log(`Not undone ${refused.id}: ${refused.reason}`);
  if (result.refused.length > 0) process.exitCode = 1;
}
