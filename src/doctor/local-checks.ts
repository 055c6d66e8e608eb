// Checks that need nothing but this machine: the configuration, the store, the mappings.
import { existsSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  adminPageOn,
  type BridgeConfig,
  ConfigError,
  type Env,
  loadConfig,
  type SecretFileReading,
  type SourceSettings,
  storePathWarning,
} from '../config/index.js';
import { changedOnDisk, LOADED_FILES_META, type LoadedFile, mappingFilesNamed } from '../config/on-disk.js';
import { exposedLedgerFiles, staleWalProblem } from '../ledger/db.js';
import {
  type FreeSpace,
  freeSpaceAt,
  freeSpaceNeeded,
  heldSince,
  isCorruptCode,
  openLedger,
  unaccountedSources,
  unaccountedSourcesMessage,
} from '../ledger/index.js';
import { currentLeaseHolder, LedgerInUse } from '../ledger/process-lease.js';
import { loadMappings, MappingLoadError, type MappingSet, sourceMappingOptions } from '../mapping/index.js';
import { goLiveLaterThanLedger, goLiveRemoved } from '../sources/go-live-ledger.js';
import { identityChanges } from '../sources/identity.js';
import { type CheckResult, type DoctorCommand, fail, ok, skip, warn } from './types.js';

export interface ConfigCheck {
  result: CheckResult;
  /** The configuration with every secret the checked command reads: every check may run. */
  config?: BridgeConfig;
  /**
   * When `config` did not load only because of a secret (a file emptied during a rotation, unreadable, a
   * `${NAME}` not set here): the configuration without those secrets, for the checks that need none (the
   * store, the held queue, the mappings), which are what an operator looks at then. `sourcesRead`: the
   * sources' own secrets did load, so the sources can be checked live too; `opencrvsRead`: every secret the
   * bridge presents did (OpenCRVS's, the sources'), and only one presented to it did not (`admin.token`, a
   * subscription's), which no check uses: OpenCRVS can be checked too.
   */
  partial?: { config: BridgeConfig; sourcesRead: boolean; opencrvsRead: boolean };
}

/** The secrets each command reads, as it reads them (LoadConfigOptions.secretFiles). */
const READS: Record<DoctorCommand, SecretFileReading> = { serve: 'all', sync: 'outbound' };

export function checkConfig(file: string | undefined, env: Env, command: DoctorCommand = 'serve'): ConfigCheck {
  try {
    const config = loadConfig({ file, env, secretFiles: READS[command] });
    const sources = config.sources.length;
    const asSync =
      command === 'sync' ? ", read as sync reads it (admin.token and the subscriptions' secrets not read)" : '';
    return {
      config,
      result: ok(
        'config',
        `${file ?? '(inline)'} is valid (OpenCRVS v${config.opencrvs.version} ${config.opencrvs.country}, ${sources} source${sources === 1 ? '' : 's'})${asSync}`,
      ),
    };
  } catch (err) {
    // A ConfigError names the file and the key path; it never repeats the value.
    if (!(err instanceof ConfigError)) throw err;
    // Reading secrets (files, and unset ${NAME}s in secret keys) is all these loads leave out: if one
    // loads, a secret was the problem.
    const partial = withoutSecretFiles(file, env);
    return { result: fail('config', err.message), ...(partial ? { partial } : {}) };
  }
}

/**
 * The configuration with the fewest secrets left unread that loads. No check uses a secret presented to the
 * bridge (the admin token, a subscription's): 'outbound' reads every one the checks present.
 */
function withoutSecretFiles(file: string | undefined, env: Env): ConfigCheck['partial'] {
  for (const secretFiles of ['outbound', 'sources', 'none'] as const) {
    try {
      return {
        config: loadConfig({ file, env, secretFiles }),
        sourcesRead: secretFiles !== 'none',
        opencrvsRead: secretFiles === 'outbound',
      };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
    }
  }
  return undefined;
}

/**
 * Opens the ledger (migrating it as the bridge would), writes and reads back a meta key. A ledger that a
 * running bridge holds (its lease) and that this version would migrate is left as it is (openLedger
 * refuses to): the older bridge would refuse it after. A warning, naming that bridge: the ledger's checks
 * are then not run; a copy of it can be checked instead (docs/deployment.md §7).
 *
 * Where there is no ledger yet, none is created: a doctor pointed at the wrong file would create an empty
 * ledger there and pass (✔), and `ledger` beside it then said "empty". A warning names the full path
 * instead, and whether serve could create the ledger there: the store's checks need nothing else of a
 * ledger that records nothing. A ledger kept at the old, working-directory reading of a relative
 * store.path is said too (config/store-path.ts). A -wal there without its ledger fails, in the words serve
 * and sync stop with.
 */
export function checkStore(
  config: BridgeConfig,
  command: DoctorCommand = 'serve',
  now = new Date(),
  freeSpace: (path: string) => FreeSpace | undefined = freeSpaceAt,
): CheckResult[] {
  const path = config.store.path;
  const shown = isAbsolute(path) ? path : `${resolve(path)} (store.path ${path}, relative to the working directory)`;
  const moved = storePathWarning(config);
  const checked = checkStoreAt(config, command, path, shown, now, freeSpace);
  return moved ? [warn('store path', moved), ...checked] : checked;
}

function checkStoreAt(
  config: BridgeConfig,
  command: DoctorCommand,
  path: string,
  shown: string,
  now: Date,
  freeSpace: (path: string) => FreeSpace | undefined,
): CheckResult[] {
  // A ledger not read (left unopened, damaged, unreadable) says nothing of a first sync: said as not checked,
  // with why, rather than left out (a reader would take no line for "nothing to fear").
  const unread = (result: CheckResult, why: string) => [result, ...firstSyncNotChecked(config, `${why} (see store)`)];
  // Its -wal left without it: serve and sync refuse to open it (creating a ledger would lose that -wal).
  const staleWal = staleWalProblem(path);
  if (staleWal) return unread(fail('store', staleWal), `no ledger at ${path}, only its -wal`);
  if (!existsSync(path)) {
    const none = noLedgerYet(path, shown);
    // Where serve could not create a ledger either, store.path names no ledger the bridge has or will have
    // (run from another directory than before an upgrade, a typo): what a first sync there would do says
    // nothing of the bridge's real ledger. Said as not checked, not as a first sync of the whole history.
    if (none.status === 'fail') return [none, ...firstSyncNotChecked(config, `no ledger at ${path} (see store)`)];
    return [none, ...firstSyncWarnings(config, () => false, `no ledger at ${path} yet`)];
  }
  let ledger: ReturnType<typeof openLedger> | undefined;
  let migrated: CheckResult | undefined;
  try {
    // Opened as serve opens it, so migrated as serve would (the upgrade check, docs/deployment.md §7), and
    // said: an older bridge refuses the ledger from now on.
    ledger = openLedger(path, {
      onMigrated: (from, to) => {
        migrated = warn(
          'ledger schema',
          `migrated from schema ${from} to ${to}, as serve does at start: a bridge older than this one now refuses this ledger (to go back, restore the backup taken before, docs/deployment.md §7)`,
        );
      },
    });
    const stamp = now.toISOString();
    ledger.setMeta('doctor:lastCheck', stamp);
    if (ledger.getMeta('doctor:lastCheck') !== stamp)
      return unread(fail('store', `${path}: a written value did not read back`), `the ledger at ${path} is unreliable`);
    const checked = quickCheck(path);
    if (checked.problem)
      return unread(fail('store', `${shown}: ${checked.problem}`), `the ledger at ${path} is damaged`);
    const results = [ok('store', `${shown} is writable; ${checked.passed ?? ''}`), ...(migrated ? [migrated] : [])];
    const exposed = exposedLedgerFiles(path);
    if (exposed.length > 0) results.push(exposedWarning(exposed));
    // doctor's one small write fits on a disk all but full (in pages the ledger already has): the file
    // system says what the next poll's batch will meet. The room /readyz `store` asks before it clears.
    const space = freeSpace(path);
    if (space && space.free < freeSpaceNeeded(space)) results.push(lowSpaceWarning(path, space));
    const hold = ledger.getHold();
    if (hold) {
      // Nothing is being delivered until someone acts: a failure, so a script running doctor sees it.
      results.push(fail('queue', `delivery is held ${heldSince(hold)}; ${whereHeldRows(config, command)}`));
    }
    // A warning, not a failure: the move may be meant. Shown until the bridge has worked against the new
    // address (it records it then), so a doctor run before starting it sees what the first pass would do.
    for (const change of identityChanges(ledger, config))
      results.push(warn(`ledger ${change.name}`, `${change.setting} changed: ${change.meaning}`));
    for (const later of goLiveLaterThanLedger(config.sources, ledger))
      results.push(warn(`go-live ${later.sourceId}`, later.message));
    for (const removed of goLiveRemoved(config.sources, ledger))
      results.push(warn(`go-live ${removed.sourceId}`, removed.message));
    // serve and sync refuse to start on it: said here in the same words.
    const configured = config.sources.map((s) => s.id);
    const unaccounted = unaccountedSources(ledger, configured);
    if (unaccounted.length > 0)
      results.push(fail('ledger sources', unaccountedSourcesMessage(ledger, unaccounted, configured)));
    const changed = changedSinceServeLoaded(ledger);
    if (changed) results.push(changed);
    const open = ledger;
    results.push(
      ...firstSyncWarnings(config, (sourceId) => open.list({ sourceId, limit: 1 }).length > 0, 'nothing recorded yet'),
    );
    return results;
  } catch (err) {
    if (err instanceof LedgerInUse)
      return unread(warn('store', `${err.message}; not checked`), `the ledger at ${path} was left unopened`);
    const code = (err as NodeJS.ErrnoException).code;
    const message = err instanceof Error ? err.message : String(err);
    const said = `${code && !message.includes(code) ? `${code}: ` : ''}${message}`;
    if (code && isCorruptCode(code))
      return unread(fail('store', `${path}: ${said}; ${CORRUPT_ADVICE}`), `the ledger at ${path} is damaged`);
    return unread(fail('store', `${path}: ${said}`), `the ledger at ${path} could not be read`);
  } finally {
    ledger?.close();
  }
}

/**
 * Where an operator sees the held queue's rows. The admin page is served only by serve, and only with an
 * admin token (docs/admin.md): asked of the configuration, not of a token read (a partial load leaves
 * admin.tokenFile unread). A host running only sync (--for sync, a CronJob) serves no page, whatever the
 * configuration says: the ledger command is what it has.
 */
function whereHeldRows(config: BridgeConfig, command: DoctorCommand): string {
  const rows = 'see `opencrvs-bridge ledger --status pending,failed`';
  if (command === 'sync') return `${rows} (the hold and the rows waiting on it; sync serves no admin page)`;
  return adminPageOn(config.admin) ? 'see /admin' : 'see `opencrvs-bridge ledger` (the admin page is off)';
}

const CORRUPT_ADVICE =
  'the ledger is corrupt: stop the bridge and restore the last backup (docs/deployment.md §8 "Backup and restore"; runbook: "Ledger corrupt")';

/**
 * SQLite's quick_check of the ledger (every page of the file, b-trees and records, no index cross-check), on
 * a connection of its own: a ledger with damaged pages opens and takes doctor's small write, and only the
 * polls and deliveries that reach those pages fail. It reads the whole file: about 0.1 s per 100 MB cached,
 * 2.3 s from a cold disk (measured), so it is run every time. At most 3 problems are listed (SQLite's words
 * name pages and tables, no row data).
 */
function quickCheck(path: string): { passed?: string; problem?: string } {
  const started = performance.now();
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 5_000 });
    const rows = db.pragma('quick_check(3)', { simple: false }) as Array<Record<string, unknown>>;
    // One row per problem, or one row of lines under a `*** in database main ***` heading.
    const found = rows
      .flatMap((row) => String(Object.values(row)[0]).split('\n'))
      .map((line) => line.trim())
      .filter((line) => line && line !== 'ok' && !line.startsWith('***'));
    if (found.length > 0) return { problem: `PRAGMA quick_check failed (${found.join('; ')}): ${CORRUPT_ADVICE}` };
    const mb = Math.round(statSync(path).size / 1_000_000);
    return { passed: `PRAGMA quick_check ok (${mb} MB in ${((performance.now() - started) / 1000).toFixed(1)} s)` };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    if (typeof code === 'string' && isCorruptCode(code))
      return { problem: `PRAGMA quick_check failed (${code}: ${message}): ${CORRUPT_ADVICE}` };
    return { problem: `PRAGMA quick_check could not run (${message})` };
  } finally {
    db?.close();
  }
}

/**
 * A ledger created before the bridge made it private (or copied, restored) that others on the host may read:
 * it keeps declarations (names, birth dates, identifiers) until store.payloadRetentionHours after delivery.
 * Not changed by the bridge: a backup job may read it through its group on purpose.
 */
function lowSpaceWarning(path: string, space: FreeSpace): CheckResult {
  const mib = (bytes: number) => `${Math.floor(bytes / (1024 * 1024))} MiB`;
  return warn(
    'store space',
    `${mib(space.free)} free of ${mib(space.size)} on the file system of ${path}: polls and deliveries fail once ` +
      `it is full (SQLITE_FULL), and /readyz store stays failing until ${mib(freeSpaceNeeded(space))} are free; ` +
      'free space or grow the volume (runbook: "Ledger disk full or unwritable")',
  );
}

function exposedWarning(exposed: Array<{ file: string; mode: string }>): CheckResult {
  const files = exposed.map(({ file, mode }) => `${file} (mode ${mode})`).join(', ');
  return warn(
    'store permissions',
    `${files}: readable or writable by users other than its owner, and it holds personal data; restrict it: chmod 600 ${exposed.map(({ file }) => file).join(' ')}`,
  );
}

/**
 * Beside a running serve on this machine: the configuration or mapping files it read at start that differ
 * on disk now, and, as serve follows them too (config/on-disk.ts), the mapping files an edited
 * configuration names that it never read. doctor checks the files as they are; serve still runs on what it
 * read, until a restart.
 */
function changedSinceServeLoaded(ledger: Pick<ReturnType<typeof openLedger>, 'getMeta'>): CheckResult | undefined {
  const holder = currentLeaseHolder(ledger);
  // Another machine's paths are not this one's files.
  if (holder?.command !== 'serve' || !holder.onThisHost) return undefined;
  let loaded: LoadedFile[];
  let config: string | undefined;
  try {
    const recorded = JSON.parse(ledger.getMeta(LOADED_FILES_META) ?? '{}') as { files?: LoadedFile[]; config?: string };
    loaded = recorded.files ?? [];
    // A serve that did not record it (an earlier version) listed its configuration file first.
    config = recorded.config ?? loaded[0]?.path;
  } catch {
    return undefined;
  }
  // A path doctor cannot read is not necessarily gone: serve may see another file system (a container
  // sharing this host name). Its own config and mapping checks say what doctor's files are.
  const changed = changedOnDisk(loaded.filter((file) => existsSync(file.path)));
  if (changed.length === 0) return undefined;
  // Only an edited configuration names other files; unedited, it names those serve read (a shipped mapping
  // too, which doctor run from another installation would find elsewhere).
  const read = new Set(loaded.map((file) => file.path));
  const named =
    config && changed.includes(config)
      ? (mappingFilesNamed(config) ?? [])
          .filter((path) => !read.has(path))
          .map((path) => (existsSync(path) ? path : `${path} (not there)`))
      : [];
  const also =
    named.length > 0 ? `; the configuration on disk also names ${named.join(', ')}, which it has not read` : '';
  return warn(
    'config on disk',
    `${changed.join(', ')} changed since the running serve (${holder.description}) read it: it still uses the version read at start${also}; these checks are of the files on disk, which a restart applies`,
  );
}

/**
 * No ledger at store.path: a warning (a first start creates it; run from elsewhere, it is the wrong file),
 * or a failure when serve could not create it there (no such directory, or not writable: SQLite writes its
 * journal files beside the ledger too, so a file is made in the directory and removed).
 */
function noLedgerYet(path: string, shown: string): CheckResult {
  const directory = dirname(resolve(path));
  const probe = join(directory, `.${basename(path)}.doctor-${process.pid}`);
  try {
    writeFileSync(probe, '', { flag: 'wx' });
    unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    const why = code === 'ENOENT' ? 'that directory does not exist' : `that directory is not writable (${code})`;
    return fail('store', `${shown}: no ledger there, and serve could not create it: ${why}`);
  }
  return warn(
    'store',
    `${shown}: no ledger there (doctor created none); serve or sync creates it (the directory is writable). If the bridge has run before, this is not its ledger: give store.path as the absolute path of the one it has`,
  );
}

/**
 * Nothing recorded yet and no start date: the first pass reads the source's whole history, and every birth
 * or death it ever recorded becomes a notification (late registrations by the thousand). Sometimes wanted;
 * better decided on purpose. `why`: what says nothing is recorded (an empty ledger, or none yet where serve
 * would create it).
 */
function firstSyncWarnings(config: BridgeConfig, recorded: (sourceId: string) => boolean, why: string): CheckResult[] {
  const results: CheckResult[] = [];
  for (const [index, source] of withoutStart(config)) {
    if (recorded(source.id)) continue;
    results.push(
      warn(
        `first sync ${source.id}`,
        `no poll.since or poll.sinceDays and ${why}: every birth and death in the source, however old, will be notified; set sources[${index}].poll.sinceDays (e.g. 30) or poll.since to start later`,
      ),
    );
  }
  return results;
}

/** The first sync of each polled source without a start date, not checked: no ledger to ask. */
function firstSyncNotChecked(config: BridgeConfig, why: string): CheckResult[] {
  return withoutStart(config).map(([, source]) => skip(`first sync ${source.id}`, `not checked: ${why}`));
}

/** The polled sources without poll.since or poll.sinceDays, with their index in sources. */
function withoutStart(config: BridgeConfig): Array<[number, SourceSettings]> {
  return [...config.sources.entries()].filter(
    ([, source]) => source.poll.enabled && source.poll.since === undefined && source.poll.sinceDays === undefined,
  );
}

/** Loads (compiles and statically checks) each source's mappings against the configured form profiles. */
export function checkMappings(
  config: BridgeConfig,
  source: SourceSettings,
): { result: CheckResult; mappings?: MappingSet } {
  const name = `mappings ${source.id}`;
  const { country, version } = config.opencrvs;
  try {
    const mappings = loadMappings(sourceMappingOptions(config.opencrvs, config.routing, source));
    const events = [...new Set(mappings.mappings.map((m) => m.eventType))].sort();
    return {
      mappings,
      result: ok(
        name,
        `${source.mappings.join(', ')} valid for the ${country} v${version} forms (events: ${events.join(', ')})`,
      ),
    };
  } catch (err) {
    if (err instanceof MappingLoadError) return { result: fail(name, err.message) };
    return { result: fail(name, err instanceof Error ? err.message : String(err)) };
  }
}
