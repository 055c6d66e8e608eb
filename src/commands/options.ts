import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { InvalidArgumentError } from 'commander';
import {
  type BridgeConfig,
  ConfigError,
  loadConfig,
  type SecretFileReading,
  storePathWarning,
} from '../config/index.js';
import { isCorruptCode, LedgerInUseError, LedgerOpenError, storageErrorCode } from '../ledger/index.js';
import { LedgerInUse } from '../ledger/process-lease.js';
// The error alone: the mapping index brings the compiler, FHIRPath and Ajv to every command.
import { MappingLoadError } from '../mapping/yaml-source.js';
import { errorLine } from '../observability/crash.js';
import type { Logger } from '../observability/logger.js';

/**
 * The configured source ids, for an error naming one that is not there: `sources: emr, dhis2`. With
 * `sources: []` an empty list read `(sources: )`, as if the list had been lost from the message.
 */
export function configuredSourcesText(config: Pick<BridgeConfig, 'sources'>): string {
  const ids = config.sources.map((s) => s.id);
  return ids.length > 0 ? `sources: ${ids.join(', ')}` : 'the config lists no sources';
}

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
  const config = loadConfigForLog(option, secretFiles, alsoReport);
  // On standard error, so a `--json` answer stays one document.
  const warning = config && storePathWarning(config);
  if (warning) console.error(`warning: ${warning}`);
  return config;
}

/**
 * loadConfigOrReport for a command whose warnings are log lines (serve, sync, replay): the store.path warning is not
 * printed but left to logStorePathWarning, once the command's logger exists, so that it is a JSON line
 * with its level like every other warning of the process (a log pipeline filtering on level=warn sees it).
 */
export function loadConfigForLog(
  option: string | undefined,
  secretFiles: SecretFileReading = 'all',
  alsoReport?: (line: string) => void,
): BridgeConfig | undefined {
  return buildOrReport(() => loadConfig({ file: configPath(option), env: process.env, secretFiles }), alsoReport);
}

/** The store.path warning (an old, working-directory reading kept: config/store-path.ts) as a log line. */
export function logStorePathWarning(config: BridgeConfig, logger: Logger): void {
  const warning = storePathWarning(config);
  // Paths only: no personal data, no secret.
  if (warning) logger.warn({ setting: 'store.path', ledger: config.store.path }, warning);
}

/**
 * The secrets read by a command that calls neither OpenCRVS nor a source (ledger, write-backs, dismiss,
 * map): none. During a rotation incident (an empty or unreadable secret file), or in a shell where a
 * secret's `${NAME}` is not set, these are the commands that tell what is happening; serve, sync and
 * replay still refuse either (sync only for a secret it presents: 'outbound'), and doctor fails its config
 * check.
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
 * The configuration of a command that changes an existing ledger (replay, dismiss, ledger rename-source
 * and retire-source), or undefined with the problem said (exit code 2): a bad config, or no ledger where
 * store.path points.
 */
export function configWithLedgerOrReport(
  option: string | undefined,
  secretFiles: SecretFileReading = 'all',
): BridgeConfig | undefined {
  const config = loadConfigOrReport(option, undefined, secretFiles);
  return config && ledgerThereOrReport(config) ? config : undefined;
}

/** Whether there is a ledger at store.path, or false with that said (exit code 2): the commands that change one. */
export function ledgerThereOrReport(config: BridgeConfig): boolean {
  if (existsSync(config.store.path)) return true;
  console.error(`No ledger at ${config.store.path} (store.path).`);
  process.exitCode = 2;
  return false;
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

/**
 * For the catch around a command's building of the bridge: a ledger that could not be opened (its line names
 * the file and what to do), or whose pages read while the bridge is built are damaged (SQLite's
 * SQLITE_CORRUPT or SQLITE_NOTADB from the first read that met them: the kept routing answers, a source's
 * history), is said in one line after `command`, exit code 1, without the stack of an unexpected error:
 * nothing in the code failed, and the runbook says what to do. Returns whether `err` was one.
 */
export function reportUnusableLedger(command: string, path: string, err: unknown): boolean {
  const sqlite = err instanceof LedgerOpenError ? err.cause : err;
  const code = storageErrorCode(sqlite);
  if (code && isCorruptCode(code)) {
    const notADatabase = code.startsWith('SQLITE_NOTADB');
    const what = notADatabase ? 'is no SQLite database (or its header is damaged)' : 'is damaged';
    // doctor cannot open a file that is no database either (its quick_check helps only with damaged pages);
    // such a file is more often another file named by mistake than a damaged ledger.
    const restore = 'restore the last backup (docs/deployment.md §8 "Backup and restore"; runbook: "Ledger corrupt")';
    const advice = notADatabase
      ? `if store.path names the ledger and no other file, ${restore}`
      : `${restore}; doctor's PRAGMA quick_check names the damaged pages`;
    console.error(
      `${command}: the ledger ${basename(path)} (store.path) ${what} (${code}: ${errorLine(sqlite)}): ${advice}`,
    );
  } else if (err instanceof LedgerOpenError) {
    console.error(`${command}: ${errorLine(err)}`);
  } else {
    return false;
  }
  process.exitCode = 1;
  return true;
}

/**
 * Runs `use`, the part of a one-shot command (ledger, dismiss, write-backs, replay) that opens and reads the
 * ledger at `path`: a ledger that cannot be opened, or whose damaged pages `use` meets wherever it reads them
 * (the rows a listing counts, a dismissed row, the kept routing answers), ends the command with
 * reportUnusableLedger's line, not SQLite's words alone (or, through an entry without bin's catch, a stack).
 * Anything else is thrown on.
 */
export async function usingLedger(command: string, path: string, use: () => unknown): Promise<void> {
  try {
    await use();
  } catch (err) {
    if (!reportUnusableLedger(command, path, err)) throw err;
  }
}
