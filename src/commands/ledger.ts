import type { Command } from 'commander';

export function registerLedger(program: Command): void {
  program
    .command('ledger')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge ledger: not implemented yet');
      process.exitCode = 2;
    });
}
