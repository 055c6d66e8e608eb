import type { Command } from 'commander';

export function registerMap(program: Command): void {
  program
    .command('map')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge map: not implemented yet');
      process.exitCode = 2;
    });
}
