// What `serve` read at start (its configuration file and the mapping files its sources name) against what
// is on disk now. Those files are read once: an edit while serve runs applies only at the next restart
// (secret files are different: config/secret-files.ts re-reads them). Unnoticed, an engineer who edits a
// mapping sees nothing change and nothing said, and a broken edit is found only when the next restart
// fails (a container crash-looping); so serve compares on a timer, says once per change which files
// differ and whether the new version would load, and shows it on /readyz and in a metric.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from '../observability/logger.js';

/** Ledger meta key where serve records the files it loaded and their hashes, for `doctor` beside it. */
export const LOADED_FILES_META = 'serve:loadedFiles';

/** How often serve compares: a few small files read and hashed, twice a minute. */
export const CONFIG_CHECK_MS = 30_000;

export interface LoadedFile {
  path: string;
  /** sha256 of the content, or `unreadable (CODE)`. */
  hash: string;
}

export function fileHash(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch (err) {
    return `unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/** The files of `loaded` whose content is no longer what was read. */
export function changedOnDisk(loaded: readonly LoadedFile[]): string[] {
  return loaded.filter((file) => fileHash(file.path) !== file.hash).map((file) => file.path);
}

export interface OnDiskChange {
  files: string[];
  /** Why the files on disk would not load (file, key path, problem), or undefined when they would. */
  problem?: string;
}

export interface ConfigOnDiskOptions {
  logger: Logger;
  /**
   * Loads the files as they are on disk now, as a start would (nothing is applied): the problem that
   * would stop the start, or undefined. Its messages name files and key paths, never values.
   */
  verify: () => string | undefined;
  intervalMs?: number;
}

export class ConfigOnDisk {
  private timer: NodeJS.Timeout | undefined;
  /** The changed files and their new hashes last reported: a change is said once, a further edit again. */
  private reported = '';
  private change: OnDiskChange | undefined;
  private readonly log: Logger;

  constructor(
    readonly loaded: readonly LoadedFile[],
    private readonly options: ConfigOnDiskOptions,
  ) {
    this.log = options.logger.child({ component: 'config' });
  }

  /** The change found at the last check, if the files still differ from what was read at start. */
  current(): OnDiskChange | undefined {
    return this.change;
  }

  /** Compares now; logs (and verifies) only what differs from the last check's finding. */
  check(): OnDiskChange | undefined {
    const changed = this.loaded
      .map((file) => ({ path: file.path, was: file.hash, hash: fileHash(file.path) }))
      .filter((file) => file.hash !== file.was);
    const signature = changed.map((file) => `${file.path}\n${file.hash}`).join('\n');
    if (signature === this.reported) return this.change;
    this.reported = signature;
    if (changed.length === 0) {
      this.change = undefined;
      this.log.info('the configuration and mapping files are again as read at start');
      return undefined;
    }
    const files = changed.map((file) => file.path);
    let problem: string | undefined;
    try {
      problem = this.options.verify();
    } catch (err) {
      problem = `could not be checked: ${err instanceof Error ? err.message : String(err)}`;
    }
    this.change = { files, ...(problem ? { problem } : {}) };
    const verdict = problem
      ? `The new version would NOT load (a restart would fail, exit 2): ${problem}`
      : 'The new version would load.';
    this.log.warn(
      { files, wouldLoad: !problem, ...(problem ? { problem } : {}) },
      `${files.join(', ')} changed on disk since start: the running service still uses the version read at start; ` +
        `run \`opencrvs-bridge validate\` then restart to apply. ${verdict}`,
    );
    return this.change;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), this.options.intervalMs ?? CONFIG_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
