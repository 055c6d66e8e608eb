import type { Command } from 'commander';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge demo: not implemented yet');
      process.exitCode = 2;
    });
}
