import type { Command } from 'commander';

export function registerSync(program: Command): void {
  program
    .command('sync')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge sync: not implemented yet');
      process.exitCode = 2;
    });
}
