import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { type BridgeConfig, ConfigError, loadConfig, type SecretFileReading } from '../config/index.js';
import { LedgerInUseError } from '../ledger/index.js';
import { LedgerInUse } from '../ledger/process-lease.js';
import { MappingLoadError } from '../mapping/index.js';
import { errorLine } from '../observability/crash.js';

/** The config file from --config, else BRIDGE_CONFIG. The CLI is, with config/, a reader of process.env. */
export function configPath(option: string | undefined): string | undefined {
  return option ?? process.env.BRIDGE_CONFIG;
}

/**
 * Loads the configuration or prints the key path of the problem and returns undefined (exit code 2).
 * `alsoReport` gets the line said on standard error, for a command that says it elsewhere too.
 * `secretFiles`: which secret files the command reads; one that calls nobody reads none (LOCAL_ONLY).
 */
export function loadConfigOrReport(
  option: string | undefined,
  alsoReport?: (line: string) => void,
  secretFiles: SecretFileReading = 'all',
): BridgeConfig | undefined {
  return buildOrReport(() => loadConfig({ file: configPath(option), env: process.env, secretFiles }), alsoReport);
}

/**
 * The secrets read by a command that calls neither OpenCRVS nor a source (ledger, write-backs, dismiss,
 * map): none. During a rotation incident (an empty or unreadable secret file), or in a shell where a
 * secret's `${NAME}` is not set, these are the commands that tell what is happening; serve, sync and
 * replay still refuse either, and doctor fails its config check.
 */
export const LOCAL_ONLY: SecretFileReading = 'none';

/** A commander argument parser for a whole number from 0 to `max`: anything else is a usage error (exit 2). */
export function wholeNumber(max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n > max) throw new InvalidArgumentError(`a whole number from 0 to ${max}`);
    return n;
  };
}

/**
 * Runs `build` (loading the configuration, or a Bridge, which compiles the sources' mappings); a
 * configuration problem, a mapping that does not load included, is said as one, with exit code 2, not 1
 * ("something is dead"). Anything else is thrown on.
 */
export function buildOrReport<T>(build: () => T, alsoReport?: (line: string) => void): T | undefined {
  try {
    return build();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof MappingLoadError) {
      const line = `configuration error: ${err.message}`;
      console.error(line);
      alsoReport?.(line);
      process.exitCode = 2;
      return undefined;
    }
    throw err;
  }
}

/**
 * Where the ledger is, for messages: a relative store.path is relative to the working directory (not to
 * the config file), so a command run from elsewhere looks at another file; the full path shows it.
 */
export function ledgerPlace(path: string): string {
  return isAbsolute(path) ? path : `${resolve(path)} (store.path ${path}, relative to the working directory)`;
}

/**
 * What to do when a relative store.path finds no ledger (or an empty one), as doctor says it: from another
 * directory than serve's, it is another file, and "nothing recorded" is not "did not arrive". Empty for an
 * absolute path.
 */
export function elsewhereHint(path: string): string {
  return isAbsolute(path)
    ? ''
    : ' If the bridge has run before, this is not its ledger: run from the directory serve runs in, or give store.path as an absolute path.';
}

/**
 * The configuration of a command that changes an existing ledger (replay, dismiss, ledger rename-source
 * and retire-source), or undefined with the problem said (exit code 2): a bad config, or no ledger where
 * store.path points.
 */
export function configWithLedgerOrReport(
  option: string | undefined,
  secretFiles: SecretFileReading = 'all',
): BridgeConfig | undefined {
  const config = loadConfigOrReport(option, undefined, secretFiles);
  if (!config) return undefined;
  if (existsSync(config.store.path)) return config;
  console.error(`No ledger at ${ledgerPlace(config.store.path)}.${elsewhereHint(config.store.path)}`);
  process.exitCode = 2;
  return undefined;
}

/**
 * For the catch around a command's opening of the ledger: another process holding it (LedgerInUse: its
 * lease, or a schema upgrade that process would refuse; LedgerInUseError: open at all, for a command that
 * needs it alone) is said in one line after `command`, exit code 1, not a crash: nothing was asked wrong,
 * and the same command works once that process stops (or with its version). Anything else is thrown on.
 */
export function reportLedgerInUse(command: string, err: unknown): void {
  if (!(err instanceof LedgerInUse || err instanceof LedgerInUseError)) throw err;
  console.error(`${command}: ${errorLine(err)}`);
  process.exitCode = 1;
}
