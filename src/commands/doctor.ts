import type { Command } from 'commander';
import { formatReport, runDoctor } from '../doctor/index.js';
import { configPath } from './options.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check a deployment live: config valid, store writable, sources reachable with the needed search support, OpenCRVS token and scopes, routed offices and facilities, mappings; exit 1 on any failure',
    )
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .option('--json', 'print the checks as one JSON object {ok, checks: [{name, status, detail}]}')
    .action(async (options: { config?: string; json?: boolean }) => {
      const report = await runDoctor({ file: configPath(options.config), env: process.env });
      console.log(options.json ? JSON.stringify(report) : formatReport(report));
      process.exitCode = report.ok ? 0 : 1;
    });
}
