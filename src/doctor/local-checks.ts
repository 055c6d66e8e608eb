// Checks that need nothing but this machine: the configuration, the store, the mappings.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { type BridgeConfig, ConfigError, type Env, loadConfig, type SourceSettings } from '../config/index.js';
import { heldSince, openLedger, unaccountedSources, unaccountedSourcesMessage } from '../ledger/index.js';
import { LedgerInUse } from '../ledger/process-lease.js';
import { loadMappings, MappingLoadError, type MappingSet, sourceMappingOptions } from '../mapping/index.js';
import { identityChanges } from '../sources/identity.js';
import { type CheckResult, fail, ok, warn } from './types.js';

export function checkConfig(file: string | undefined, env: Env): { result: CheckResult; config?: BridgeConfig } {
  try {
    const config = loadConfig({ file, env });
    const sources = config.sources.length;
    return {
      config,
      result: ok(
        'config',
        `${file ?? '(inline)'} is valid (OpenCRVS v${config.opencrvs.version} ${config.opencrvs.country}, ${sources} source${sources === 1 ? '' : 's'})`,
      ),
    };
  } catch (err) {
    // A ConfigError names the file and the key path; it never repeats the value.
    if (err instanceof ConfigError) return { result: fail('config', err.message) };
    throw err;
  }
}

/**
 * Opens the ledger (creating and migrating it as the bridge would), writes and reads back a meta key. A
 * ledger that a running bridge holds (its lease) and that this version would migrate is left as it is
 * (openLedger refuses to): the older bridge would refuse it after. A warning, naming that bridge: the
 * ledger's checks are then not run; a copy of it can be checked instead (docs/deployment.md §7).
 */
export function checkStore(config: BridgeConfig, now = new Date()): CheckResult[] {
  const path = config.store.path;
  const existed = existsSync(path);
  let ledger: ReturnType<typeof openLedger> | undefined;
  try {
    ledger = openLedger(path);
    const stamp = now.toISOString();
    ledger.setMeta('doctor:lastCheck', stamp);
    if (ledger.getMeta('doctor:lastCheck') !== stamp)
      return [fail('store', `${path}: a written value did not read back`)];
    // A relative store.path is relative to the working directory: a doctor run from elsewhere creates
    // a new, empty ledger there, which the full path and "created" make plain.
    const shown = isAbsolute(path) ? path : `${resolve(path)} (store.path ${path})`;
    const results = [ok('store', `${shown} is writable${existed ? '' : ' (created: no ledger was there)'}`)];
    const hold = ledger.getHold();
    if (hold) {
      // Nothing is being delivered until someone acts: a failure, so a script running doctor sees it.
      results.push(fail('queue', `delivery is held ${heldSince(hold)}; see /admin`));
    }
    // A warning, not a failure: the move may be meant. Shown until the bridge has worked against the new
    // address (it records it then), so a doctor run before starting it sees what the first pass would do.
    for (const change of identityChanges(ledger, config))
      results.push(warn(`ledger ${change.name}`, `${change.setting} changed: ${change.meaning}`));
    // serve and sync refuse to start on it: said here in the same words.
    const configured = config.sources.map((s) => s.id);
    const unaccounted = unaccountedSources(ledger, configured);
    if (unaccounted.length > 0)
      results.push(fail('ledger sources', unaccountedSourcesMessage(ledger, unaccounted, configured)));
    for (const source of config.sources) {
      // Nothing recorded yet and no start date: the first pass reads the source's whole history, and
      // every birth or death it ever recorded becomes a notification (late registrations by the
      // thousand). Sometimes wanted; better decided on purpose.
      if (!source.poll.enabled || source.poll.since !== undefined || source.poll.sinceDays !== undefined) continue;
      if (ledger.list({ sourceId: source.id, limit: 1 }).length > 0) continue;
      results.push(
        warn(
          `first sync ${source.id}`,
          'no poll.since or poll.sinceDays and nothing recorded yet: every birth and death in the source, however old, will be notified; set sources[].poll.sinceDays (e.g. 30) or poll.since to start later',
        ),
      );
    }
    return results;
  } catch (err) {
    if (err instanceof LedgerInUse) return [warn('store', `${err.message}; not checked`)];
    const code = (err as NodeJS.ErrnoException).code;
    const message = err instanceof Error ? err.message : String(err);
    return [fail('store', `${path}: ${code && !message.includes(code) ? `${code}: ` : ''}${message}`)];
  } finally {
    ledger?.close();
  }
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
