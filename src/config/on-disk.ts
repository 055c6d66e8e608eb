// What `serve` read at start (its configuration file and the mapping files its sources name) against what
// is on disk now. Those files are read once: an edit while serve runs applies only at the next restart
// (secret files are different: config/secret-files.ts re-reads them). Unnoticed, an engineer who edits a
// mapping sees nothing change and nothing said, and a broken edit is found only when the next restart
// fails (a container crash-looping); so serve compares on a timer, says once per change which files
// differ and whether the new version would load, and shows it on /readyz and in a metric. An edited
// configuration may name mapping files serve never read: those are watched too (only those it names), so
// creating, fixing or breaking one is said as well, rather than the verdict staying as it was.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import type { Logger } from '../observability/logger.js';
import { isMappingPath, shippedMappingFile } from './paths.js';

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

/**
 * The mapping files a configuration file names under `sources[].mappings`, read leniently: a
 * configuration that does not load (it names a file not in place yet, say) still says which files to
 * follow. Undefined when it is not YAML. An entry given by `${NAME}` is left out: its value is the
 * environment's, and a start-time file under it is watched anyway.
 */
export function mappingFilesNamed(configPath: string): string[] | undefined {
  let doc: unknown;
  try {
    doc = parse(readFileSync(configPath, 'utf8'));
  } catch {
    return undefined;
  }
  const sources = (doc as { sources?: unknown } | null)?.sources;
  if (!Array.isArray(sources)) return [];
  const dir = dirname(resolve(configPath));
  return sources
    .flatMap((source) => {
      const entries = (source as { mappings?: unknown } | null)?.mappings;
      return Array.isArray(entries) ? entries : [];
    })
    .filter((entry): entry is string => typeof entry === 'string' && !entry.includes('${'))
    .map((entry) =>
      // As config/load.ts resolves them: a path is relative to the configuration file, a name the package's.
      isMappingPath(entry) ? resolve(dir, entry) : shippedMappingFile(entry),
    );
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

export interface OnDiskVerdict {
  /** Why the files on disk would not load (file, key path, problem), or undefined when they would. */
  problem?: string;
  /**
   * The files the configuration on disk names now (itself and its sources' mapping files), or undefined
   * when it could not be read that far.
   */
  files?: readonly string[];
}

export interface ConfigOnDiskOptions {
  logger: Logger;
  /**
   * Loads the files as they are on disk now, as a start would (nothing is applied): the problem that
   * would stop the start, and the files it named. Its messages name files and key paths, never values.
   */
  verify: () => OnDiskVerdict;
  intervalMs?: number;
}

export class ConfigOnDisk {
  private timer: NodeJS.Timeout | undefined;
  /** The changed files and their new hashes last reported: a change is said once, a further edit again. */
  private reported = '';
  /**
   * Files the configuration on disk named at the last verify that were not read at start (a mapping file
   * a new edit points at): their appearing, fixing or breaking changes the verdict, so they are watched too.
   */
  private named: string[] = [];
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
    if (changed.length === 0) {
      // As read at start, the configuration names the files read at start: nothing else to watch.
      this.named = [];
      this.reported = '';
      if (this.change) this.log.info('the configuration and mapping files are again as read at start');
      this.change = undefined;
      return undefined;
    }
    // Hashed before the verify reads them: an edit during it is a further change, seen at the next check.
    const named = this.named.map((path) => ({ path, hash: fileHash(path) }));
    const signature = ConfigOnDisk.signature(changed, named);
    if (signature === this.reported) return this.change;
    const files = changed.map((file) => file.path);
    let verdict: OnDiskVerdict;
    try {
      verdict = this.options.verify();
    } catch (err) {
      verdict = { problem: `could not be checked: ${err instanceof Error ? err.message : String(err)}` };
    }
    const { problem } = verdict;
    this.reported = signature;
    if (verdict.files) {
      // A configuration that could not be read names nothing new: the files it named before stay watched.
      const read = new Set(this.loaded.map((file) => file.path));
      const now = [...new Set(verdict.files)].filter((path) => !read.has(path));
      if (now.join('\n') !== this.named.join('\n')) {
        this.named = now;
        // Those newly named are hashed as the verify just read them (an edit within these milliseconds is
        // not told apart, as at start); those named before keep the hash taken before it.
        const was = new Map(named.map((file) => [file.path, file.hash]));
        this.reported = ConfigOnDisk.signature(
          changed,
          now.map((path) => ({ path, hash: was.get(path) ?? fileHash(path) })),
        );
      }
    }
    this.change = { files, ...(problem ? { problem } : {}) };
    const said = problem
      ? `The new version would NOT load (a restart would fail, exit 2): ${problem}`
      : 'The new version would load.';
    this.log.warn(
      { files, wouldLoad: !problem, ...(problem ? { problem } : {}) },
      `${files.join(', ')} changed on disk since start: the running service still uses the version read at start; ` +
        `run \`opencrvs-bridge validate\` then restart to apply. ${said}`,
    );
    return this.change;
  }

  /** The state compared from one check to the next: the changed files read at start, and those named since. */
  private static signature(
    changed: ReadonlyArray<{ path: string; hash: string }>,
    named: ReadonlyArray<{ path: string; hash: string }>,
  ): string {
    return [
      ...changed.map((file) => `${file.path}\n${file.hash}`),
      ...named.map((file) => `+${file.path}\n${file.hash}`),
    ].join('\n');
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
