// `opencrvs-bridge ledger rename-source OLD NEW` and `ledger retire-source ID`: what an operator runs when a
// source id with history in the ledger is no longer in the configuration (serve and sync refuse to start
// until then, see ledger/source-check.ts). Both need the bridge stopped: the ledger is opened for this
// process alone, and refused while another has it open.
import { type Command, Option } from 'commander';
import type { BridgeConfig } from '../config/index.js';
import { type Ledger, openLedger, SourceIdError, type SourceRenameResult } from '../ledger/index.js';
import { configWithLedgerOrReport, LOCAL_ONLY, reportLedgerInUse, usingLedger } from './options.js';

/**
 * The `ledger` options that mean nothing to these subcommands (they share the parent's `--config`). Given
 * before the subcommand they are the parent's; after it, commander would answer "unknown option" and
 * print the whole help, which does not say that `--json` is `ledger`'s. So each subcommand accepts them
 * hidden, and configFor refuses them in either place with where they belong, before anything is changed.
 */
const VIEW_OPTIONS = [
  ['status', '--status <states>'],
  ['eventType', '--event-type <type>'],
  ['source', '--source <id>'],
  ['find', '--find <ref>'],
  ['limit', '--limit <n>'],
  ['json', '--json'],
] as const;

function withViewOptionsHidden(command: Command): Command {
  for (const [, flags] of VIEW_OPTIONS) command.addOption(new Option(flags).hideHelp());
  return command;
}

export function registerLedgerSources(ledger: Command): void {
  const rename = ledger
    .command('rename-source')
    .description(
      'After sources[].id was renamed in the configuration: move everything the ledger holds under OLD (events, cursors, notifications, write-backs) to NEW. Events keep their transaction ids, so nothing is sent again. Run it with the bridge stopped (refused while another process has the ledger open).',
    )
    .argument('<old>', 'the id the ledger holds history under')
    .argument('<new>', 'the id in sources[] now')
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .action(async (from: string, to: string, _options: unknown, command: Command) => {
      const config = configFor(command);
      if (!config) return;
      await usingLedgerAlone(command.name(), config.store.path, (store) => {
        if (config.sources.some((s) => s.id === from)) {
          return refuse(`rename-source: "${from}" is still in sources[]: rename it in the configuration first`);
        }
        if (!config.sources.some((s) => s.id === to)) {
          return refuse(`rename-source: "${to}" is not in sources[]: rename the source in the configuration first`);
        }
        let result: SourceRenameResult;
        try {
          result = store.sources.rename(from, to, Date.now());
        } catch (err) {
          if (err instanceof SourceIdError) return refuse(`rename-source: ${err.message}`);
          throw err;
        }
        const { rows, cursors, notifications, writeBacks } = result.moved;
        console.log(
          `Moved source "${from}" to "${to}": ${rows} events, ${cursors} cursors, ${notifications} notifications, ` +
            `${writeBacks} write-backs. The events keep their transaction ids: nothing is sent again.`,
        );
        if (result.newTransactionIds > 0)
          console.log(
            `${result.newTransactionIds} dead events, refused because another OpenCRVS client had used their ` +
              `transaction ids or notified their event, now have the ids of "${to}": \`opencrvs-bridge replay ` +
              `--dead\` sends them.`,
          );
      });
    });
  withViewOptionsHidden(rename);

  const retire = ledger
    .command('retire-source')
    .description(
      'Record that source ID was removed from the configuration for good: its history stays in the ledger (ledger --source ID), and serve and sync start without it. A renamed source is moved with rename-source instead: retired, its records would be sent again under the new id. Run it with the bridge stopped.',
    )
    .argument('<id>', 'the source id the ledger holds history under')
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option(
      '--not-renamed',
      'retire it although sources[] has a source with nothing recorded yet (one that is not this source renamed)',
    )
    .action(async (id: string, options: { notRenamed?: boolean }, command: Command) => {
      const config = configFor(command);
      if (!config) return;
      await usingLedgerAlone(command.name(), config.store.path, (store) => {
        if (config.sources.some((s) => s.id === id)) {
          return refuse(`retire-source: "${id}" is still in sources[]: take it out of the configuration first`);
        }
        const history = store.sources.history(id);
        if (history.rows + history.cursors + history.notifications + history.writeBacks === 0) {
          return refuse(`retire-source: the ledger holds nothing under source id "${id}"`);
        }
        if (store.sources.retired().has(id)) {
          console.log(`Source "${id}" is already retired.`);
          return;
        }
        const recorded = new Set(store.sources.recordedIds());
        const fresh = config.sources.map((s) => s.id).filter((other) => !recorded.has(other));
        if (fresh.length > 0 && !options.notRenamed) {
          return refuse(
            `retire-source: sources[] has ${fresh.map((f) => `"${f}"`).join(', ')} with nothing recorded yet. If one ` +
              `is "${id}" renamed, run \`opencrvs-bridge ledger rename-source ${id} ${fresh[0]}\` instead: retired, ` +
              `every record "${id}" delivered would be sent again under the new id. If not, add --not-renamed.`,
          );
        }
        store.sources.retire(id, Date.now());
        console.log(
          `Retired source "${id}": its ${history.rows} events stay in the ledger (\`opencrvs-bridge ledger --source ${id}\`); ` +
            'serve and sync start without it.',
        );
        const waiting = notDone(store, id);
        if (waiting.total > 0)
          console.log(
            `${waiting.total} of them are not delivered (${waiting.dead} dead): pending ones are still sent, ` +
              '`sync --once` still counts them, and `opencrvs-bridge replay` sends a dead one as stored.',
          );
      });
    });
  withViewOptionsHidden(retire);
}

/** The configuration, with a ledger where store.path points; undefined (exit code set) if not. */
function configFor(command: Command): BridgeConfig | undefined {
  const given = (name: string) =>
    command.getOptionValueSource(name) === 'cli' || command.parent?.getOptionValueSource(name) === 'cli';
  const misplaced = VIEW_OPTIONS.filter(([name]) => given(name)).map(([name]) => `--${kebab(name)}`);
  if (misplaced.length > 0) {
    const own = command.options.filter((o) => !o.hidden).map((o) => o.long);
    const which = misplaced.length === 1 ? `${misplaced[0]} is an option` : `${misplaced.join(' and ')} are options`;
    refuse(
      `${command.name()}: ${which} of \`ledger\` itself (the list of events), not of ${command.name()}, which ` +
        `takes ${own.join(' and ')} only and prints text. Nothing was changed.`,
    );
    return undefined;
  }
  return configWithLedgerOrReport(command.optsWithGlobals<{ config?: string }>().config, LOCAL_ONLY);
}

/**
 * Runs `use` on the ledger at `path` opened for this process alone. Refused while another process has it
 * open; a ledger that cannot be opened (a file that is no database), or whose damaged pages `use` meets
 * (a source's history, the rows a rename moves), ends the command with usingLedger's one line, not a stack.
 */
function usingLedgerAlone(command: string, path: string, use: (ledger: Ledger) => void): Promise<void> {
  return usingLedger(command, path, () => {
    let ledger: Ledger;
    try {
      ledger = openLedger(path, { exclusive: true });
    } catch (err) {
      reportLedgerInUse(command, err);
      return;
    }
    try {
      use(ledger);
    } finally {
      ledger.close();
    }
  });
}

function notDone(ledger: Ledger, sourceId: string): { total: number; dead: number } {
  const rows = ledger.list({ sourceId, states: ['dead', 'failed', 'pending', 'delivering'], limit: 10_000 });
  return { total: rows.length, dead: rows.filter((r) => r.state === 'dead').length };
}

function refuse(message: string): void {
  console.error(message);
  process.exitCode = 2;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
