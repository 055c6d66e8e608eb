import type { Command } from 'commander';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge doctor: not implemented yet');
      process.exitCode = 2;
    });
}
