// The CLI loads only the command it runs (commandsToLoad in src/cli.ts): that command's help, options and
// usage errors must be exactly those of the full program, and everything else must still see every command.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Command, CommanderError } from 'commander';
import { buildProgram, commandsToLoad } from '../../src/cli.js';

/** A command's help and that of each of its subcommands, by their path under the program. */
function helps(command: Command, path = command.name()): Map<string, string> {
  const found = new Map([[path, command.helpInformation()]]);
  for (const sub of command.commands) for (const [p, h] of helps(sub, `${path} ${sub.name()}`)) found.set(p, h);
  return found;
}

/** What commander writes to stderr for these arguments, and the exit code it ends with. */
async function usageError(program: Command, args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const capture = (command: Command) => {
    command.configureOutput({ writeErr: (text) => (err += text), writeOut: () => {} });
    command.exitOverride();
    for (const sub of command.commands) capture(sub);
  };
  capture(program);
  try {
    await program.parseAsync(['node', 'opencrvs-bridge', ...args]);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: e.exitCode, err };
  }
  assert.fail(`${args.join(' ')} parsed`);
}

describe('the CLI loads only the command it runs', () => {
  it("gives each command, alone, the same help and usage errors as the full program's", async () => {
    const full = await buildProgram();
    const names = full.commands.map((c) => c.name());
    assert.ok(names.length >= 12, names.join(', '));
    for (const name of names) {
      assert.deepEqual(commandsToLoad([name, '--help']), [name]);
      assert.deepEqual(commandsToLoad(['help', name]), [name]);
      const alone = await buildProgram(commandsToLoad([name]));
      // The others are listed, in the same order; the one named is the command itself (its help says so).
      assert.deepEqual(
        alone.commands.map((c) => c.name()),
        names,
      );
      const command = (program: Command) => program.commands.find((c) => c.name() === name) as Command;
      assert.deepEqual(helps(command(alone), name), helps(command(full), name), name);
      const args = [name, '--no-such-option'];
      assert.deepEqual(await usageError(alone, args), await usageError(await buildProgram(), args), name);
    }
  });

  it("loads no command for the program's help, --version or an unknown command", () => {
    for (const args of [[], ['--help'], ['-h'], ['help'], ['--version'], ['-V'], ['--version', 'ledger'], ['ledgers']])
      assert.deepEqual(commandsToLoad(args), [], args.join(' '));
  });

  it("lists every command, unloaded, exactly as the loaded commands' summaries and arguments do", async () => {
    const listed = await buildProgram(commandsToLoad(['--help']));
    const loaded = await buildProgram();
    assert.equal(listed.helpInformation(), loaded.helpInformation());
    // Each command's summary is one line of the listing's, not its whole description.
    for (const command of loaded.commands.filter((c) => c.name() !== 'help'))
      assert.ok(command.summary() && command.summary() !== command.description(), command.name());
    for (const args of [['ledgers'], ['--no-such-option']])
      assert.deepEqual(await usageError(listed, args), await usageError(await buildProgram(), args), args.join(' '));
  });
});
