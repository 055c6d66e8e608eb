// What `serve` read at start (its configuration file and the mapping files its sources name) against what
// is on disk now. Those files are read once: an edit while serve runs applies only at the next restart
// (secret files are different: config/secret-files.ts re-reads them). Unnoticed, an engineer who edits a
// mapping sees nothing change and nothing said, and a broken edit is found only when the next restart
// fails (a container crash-looping); so serve compares on a timer, says once per change which files
// differ and whether the new version would load, and shows it on /readyz and in a metric. An edited
// configuration may name mapping files serve never read: those are watched too (only those it names), so
// creating, fixing or breaking one is said as well, rather than the verdict staying as it was.
//
// The verify compiles every mapping (tens to hundreds of milliseconds a change): it runs on a worker thread,
// one at a time and under a time limit, so the receiver's acknowledgements and the delivery worker never
// wait on it. The files are read without blocking either.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parse } from 'yaml';
import type { Logger } from '../observability/logger.js';
import { callSignal } from '../util/call-signal.js';
import type { FilesVerdict } from './on-disk-verify.js';
import { isMappingPath, shippedMappingFile } from './paths.js';

/** Ledger meta key where serve records the files it loaded and their hashes, for `doctor` beside it. */
export const LOADED_FILES_META = 'serve:loadedFiles';

/** How often serve compares: a few small files read and hashed, twice a minute. */
export const CONFIG_CHECK_MS = 30_000;

/**
 * How long one check may take, the files read and the verify on its worker: a verify takes well under a
 * second, so this is a file system that does not answer (a stale network mount) or a machine starved.
 */
export const CONFIG_CHECK_TIMEOUT_MS = 20_000;

export interface LoadedFile {
  path: string;
  /** sha256 of the content, or `unreadable (CODE)`. */
  hash: string;
}

export function fileHash(path: string): string {
  try {
    return contentHash(readFileSync(path));
  } catch (err) {
    return unreadable(err);
  }
}

function contentHash(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** What a file that could not be read is recorded as: a hash that matches no content. */
function unreadable(err: unknown): string {
  return `unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
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

/**
 * Reads of files not yet answered, by path. A file system that does not answer (a stale network mount)
 * holds a thread of libuv's pool per read, which no abort frees: a later check waits on the same read
 * rather than take another thread, so a stuck file holds one, not one per check.
 */
const reading = new Map<string, Promise<Buffer>>();

/** fileHash without blocking the event loop; rejects with the signal's reason once `signal` aborts. */
export async function fileHashAsync(path: string, signal: AbortSignal): Promise<string> {
  let read = reading.get(path);
  if (!read) {
    read = readFile(path);
    reading.set(path, read);
    const done = () => reading.delete(path);
    read.then(done, done);
  }
  let content: Buffer;
  try {
    content = await untilAborted(read, signal);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    return unreadable(err);
  }
  return contentHash(content);
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      },
    );
  });
}

// A path's segment: no slash, space or punctuation that ends a path in a sentence.
const SEGMENT = `[^\\s/:,;()[\\]'"]+`;
/**
 * An absolute path: at the start or after a space, a bracket or a quote (so not a URL's path). Its folders
 * may hold spaces (`/srv/my data/`): a run of words counts as one only when a `/` follows it at once. The
 * last segment ends at a space (where the sentence may go on): a base name with a space keeps its words.
 */
const ABSOLUTE_PATH = new RegExp(`(^|[\\s(['"])\\/(?:${SEGMENT}(?: +${SEGMENT})*\\/)*(${SEGMENT})`, 'g');

/**
 * `text` with each path in it cut to its base name (`/etc/bridge/bridge.yaml: routing…` →
 * `bridge.yaml: routing…`), for /readyz and /healthz, which anyone who reaches the port may read: where
 * the configuration, the ledger and the secrets live tells an intruder where to look. The log keeps the
 * paths. The paths the caller knows (`known`: the files it read, the ledger's, absolute or relative) are
 * found as they are written, whatever they hold; any other absolute path by its shape (ABSOLUTE_PATH).
 */
export function baseNamesOnly(text: string, known: readonly string[] = []): string {
  let out = text;
  // Longest first: `/a/b` inside `/a/b c/d` is a folder, not the path.
  for (const path of [...known].sort((a, b) => b.length - a.length)) {
    const base = path.slice(path.lastIndexOf('/') + 1);
    if (base !== path && base !== '') out = out.split(path).join(base);
  }
  return out.replace(ABSOLUTE_PATH, '$1$2');
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
   * Gives up when `signal` aborts (the check's time limit, or stop()).
   */
  verify: (signal: AbortSignal) => Promise<OnDiskVerdict>;
  intervalMs?: number;
  /** How long one check may take (CONFIG_CHECK_TIMEOUT_MS). */
  timeoutMs?: number;
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
  /** The check under way: one at a time. */
  private running: Promise<OnDiskChange | undefined> | undefined;
  /** The one check waiting for it: later asks share it, and it reads the disk when it starts (the newest edit). */
  private queued: Promise<OnDiskChange | undefined> | undefined;
  /** Aborted by stop(): the check under way gives up and its verify's worker is ended. */
  private readonly stopping = new AbortController();
  /** The last failure to compare that was logged: said once, not at every tick. */
  private failure = '';

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

  /**
   * Compares now; logs (and verifies) only what differs from the last check's finding. One check runs at a
   * time: asked meanwhile, the next one runs after it (one, whatever the number of asks).
   */
  check(): Promise<OnDiskChange | undefined> {
    if (this.stopping.signal.aborted) return Promise.resolve(this.change);
    if (this.running) {
      this.queued ??= this.running.then(() => {
        this.queued = undefined;
        return this.check();
      });
      return this.queued;
    }
    const running = this.bounded().finally(() => {
      if (this.running === running) this.running = undefined;
    });
    this.running = running;
    return running;
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? CONFIG_CHECK_TIMEOUT_MS;
  }

  private get outOfTime(): string {
    return `not done within ${this.timeoutMs} ms`;
  }

  /** One check under the time limit; a failure to compare is logged and leaves the finding as it was. */
  private async bounded(): Promise<OnDiskChange | undefined> {
    // A timer holding the controller, not AbortSignal.any over AbortSignal.timeout: on Node 20 that timeout
    // signal can be garbage-collected before it fires (nodejs/node#57736), and the check then waited as
    // long as a file that does not answer did.
    const call = callSignal(this.timeoutMs, this.stopping.signal);
    const { signal } = call;
    try {
      const change = await this.compare(signal);
      this.failure = '';
      return change;
    } catch (err) {
      if (this.stopping.signal.aborted) return this.change;
      const why = signal.aborted ? this.outOfTime : err instanceof Error ? err.message : String(err);
      if (why !== this.failure)
        this.log.warn(
          { why },
          'could not compare the configuration and mapping files with the disk; trying again at the next check',
        );
      this.failure = why;
      return this.change;
    } finally {
      call.done();
    }
  }

  private async compare(signal: AbortSignal): Promise<OnDiskChange | undefined> {
    const changed: Array<{ path: string; was: string; hash: string }> = [];
    for (const file of this.loaded) {
      const hash = await fileHashAsync(file.path, signal);
      if (hash !== file.hash) changed.push({ path: file.path, was: file.hash, hash });
    }
    if (changed.length === 0) {
      // As read at start, the configuration names the files read at start: nothing else to watch.
      this.named = [];
      this.reported = '';
      if (this.change) this.log.info('the configuration and mapping files are again as read at start');
      this.change = undefined;
      return undefined;
    }
    // Hashed before the verify reads them: an edit during it is a further change, seen at the next check.
    const named: Array<{ path: string; hash: string }> = [];
    for (const path of this.named) named.push({ path, hash: await fileHashAsync(path, signal) });
    const signature = ConfigOnDisk.signature(changed, named);
    if (signature === this.reported) return this.change;
    const files = changed.map((file) => file.path);
    let verdict: OnDiskVerdict;
    try {
      verdict = await this.options.verify(signal);
    } catch (err) {
      // Stopped: nothing to say. Out of time: said as any other failure of the verify, once for this change.
      if (this.stopping.signal.aborted) throw err;
      const why = signal.aborted ? this.outOfTime : err instanceof Error ? err.message : String(err);
      verdict = { problem: `could not be checked: ${why}` };
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
        const hashes: Array<{ path: string; hash: string }> = [];
        for (const path of now) hashes.push({ path, hash: was.get(path) ?? (await fileHashAsync(path, signal)) });
        this.reported = ConfigOnDisk.signature(changed, hashes);
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
    if (this.timer || this.stopping.signal.aborted) return;
    // A tick while a check runs queues one (check()): never more than one waits.
    this.timer = setInterval(() => void this.check(), this.options.intervalMs ?? CONFIG_CHECK_MS);
    this.timer.unref();
  }

  /** Stops the timer and ends the check under way (its verify's worker too); resolves once it has ended. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopping.abort(new Error('stopping'));
    await this.running;
    await this.queued;
  }
}

/** The worker's module, beside this one: dist/config/*.js when built, src/config/*.ts under tsx. */
const WORKER_MODULE = new URL(`./on-disk-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * The worker of the last verify until it has exited. Ended, a worker exits once its JavaScript runs again;
 * one stuck reading a file that does not answer cannot, and a verify begun meanwhile would hold a further
 * thread: the next verify waits for it to be gone instead (within its own time limit).
 */
let lingering: Promise<void> | undefined;

/**
 * Verifies the configuration at `path` and the mapping files it names on a worker thread of its own
 * (config/on-disk-worker.ts), so the event loop keeps answering meanwhile; the thread is ended when the
 * verify is done or `signal` aborts. Rejects with the worker's failure, or with the signal's reason.
 */
export async function verifyInWorker(
  input: { path: string; env: Readonly<Record<string, string | undefined>> },
  signal: AbortSignal,
): Promise<FilesVerdict> {
  while (lingering) await untilAborted(lingering, signal);
  signal.throwIfAborted();
  // The environment as plain data (process.env cannot be cloned as it is); it stays in this process.
  const workerData = { path: input.path, env: { ...input.env } };
  // Not the parent's flags: `--input-type=module` (a process started with `-e`) is refused in a worker.
  // A heap limit: a mapping set is a few megabytes compiled, so this is a runaway, not a large site.
  const options = { workerData, execArgv: [], resourceLimits: { maxOldGenerationSizeMb: 256 } };
  const worker = WORKER_MODULE.pathname.endsWith('.ts')
    ? // Under tsx (tests, the benches): Node 20 does not apply the parent's `--import tsx` hooks in a
      // worker, so the worker registers tsx's itself before importing the TypeScript module.
      new Worker(
        `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); ` +
          `await import(${JSON.stringify(WORKER_MODULE.href)});`,
        { ...options, eval: true },
      )
    : new Worker(WORKER_MODULE, options);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  lingering = exited;
  void exited.then(() => {
    if (lingering === exited) lingering = undefined;
  });
  return new Promise<FilesVerdict>((resolve, reject) => {
    const done = () => {
      signal.removeEventListener('abort', abort);
      void worker.terminate();
    };
    const abort = () => {
      done();
      reject(signal.reason);
    };
    signal.addEventListener('abort', abort, { once: true });
    worker.once('message', (message: { verdict?: FilesVerdict; error?: string }) => {
      done();
      if (message.verdict) resolve(message.verdict);
      else reject(new Error(message.error ?? 'the verify gave no answer'));
    });
    worker.once('error', (err) => {
      done();
      reject(err);
    });
    worker.once('exit', (code) => {
      done();
      reject(new Error(`the verify's worker exited (${code}) without an answer`));
    });
  });
}
