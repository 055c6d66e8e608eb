import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import type { BridgeConfig } from './types.js';

/** Store settings → why the ledger was taken from another place than store.path's reading (storePathWarning). */
const warnings = new WeakMap<object, string>();

/**
 * Makes a relative store.path absolute, from the configuration file's folder like every other path in it
 * (mappings, secret files): the ledger is then the same file whichever directory a command runs from (a
 * cron job's `sync --once`, `ledger` from a shell). It used to be read from the working directory, and
 * a command run from elsewhere created a new, empty ledger there: its history, cursors and write-back jobs
 * were not the running bridge's. Where only that old reading finds a ledger, it is kept (with a warning
 * saying how to make it explicit), so an upgrade never starts a new ledger beside the old one; where both
 * readings find a different ledger, which one is the bridge's cannot be told, and the configuration is
 * refused. A configuration given as text (tests, the demo) has no folder: its path is left as given.
 */
export function resolveStorePath(config: BridgeConfig, file: string | undefined): void {
  const given = config.store.path;
  if (given === ':memory:' || isAbsolute(given) || !file) return;
  const fromConfig = resolve(dirname(resolve(file)), given);
  const fromCwd = resolve(given);
  config.store.path = fromConfig;
  if (fromConfig === fromCwd || !existsSync(fromCwd) || sameFile(fromConfig, fromCwd)) return;
  if (existsSync(fromConfig)) {
    throw new ConfigError(
      'store.path',
      `${given} names a ledger at ${fromConfig} (relative to the configuration file's folder) and another at ${fromCwd} (relative to the working directory, as read before): give store.path as the absolute path of the one the bridge uses`,
      file,
    );
  }
  config.store.path = fromCwd;
  warnings.set(
    config.store,
    `store.path ${given}: using the ledger at ${fromCwd}, found relative to the working directory; a relative store.path is now read from the configuration file's folder (${fromConfig}, where there is none). Set store.path: ${fromCwd} so that every command finds this ledger from any directory`,
  );
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Why the ledger is not where store.path now reads (an old working-directory reading kept), or undefined. */
export function storePathWarning(config: BridgeConfig): string | undefined {
  return warnings.get(config.store);
}
