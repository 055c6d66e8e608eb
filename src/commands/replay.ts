import type { Command } from 'commander';

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('(not implemented yet)')
    .action(() => {
      console.error('opencrvs-bridge replay: not implemented yet');
      process.exitCode = 2;
    });
}
