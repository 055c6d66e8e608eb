import type { Command } from 'commander';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge validate: not implemented yet');
      process.exitCode = 2;
    });
}
