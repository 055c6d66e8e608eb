import { type Command, Option } from 'commander';
import { type DoctorCommand, formatReport, runDoctor } from '../doctor/index.js';
import { configPath } from './options.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check a deployment live: config valid, store writable, sources reachable with the needed search support, OpenCRVS token and scopes, routed offices and facilities, mappings; exit 1 on any failure',
    )
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option('--json', 'print the checks as one JSON object {ok, checks: [{name, status, detail}]}')
    .addOption(
      new Option(
        '--for <command>',
        "the command this host runs: serve reads every secret; sync (a host running only sync --once, a CronJob) only those it presents (OpenCRVS's, sources[].auth), as sync does: admin.token and the subscriptions' secrets are neither needed nor checked, nor are the subscriptions (no notification reaches sync), and a held queue points to `ledger --status pending,failed` (sync serves no admin page)",
      )
        .choices(['serve', 'sync'])
        .default('serve'),
    )
    .action(async (options: { config?: string; json?: boolean; for: DoctorCommand }) => {
      const report = await runDoctor({ file: configPath(options.config), env: process.env, for: options.for });
      console.log(options.json ? JSON.stringify(report) : formatReport(report));
      process.exitCode = report.ok ? 0 : 1;
    });
}
