import type { Command } from 'commander';

export function registerSandbox(program: Command): void {
  program
    .command('sandbox')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge sandbox: not implemented yet');
      process.exitCode = 2;
    });
}
