// Which EMR (or DHIS2 programme) and which OpenCRVS the ledger was written against. The ledger's rows
// mean something only there: subject keys are the source's resource ids, and "delivered" means present in
// that OpenCRVS. A configuration repointed at another one (an EMR migrated to a server that gave its
// records new ids, an OpenCRVS switched from staging to production) otherwise goes on without a word:
// every birth registered again, or rows recorded delivered that the new OpenCRVS never had.
import type { BridgeConfig, OpenCrvsSettings, SourceSettings } from '../config/types.js';
import type { Ledger } from '../ledger/index.js';
import { normalisedUrl } from '../util/url.js';
import { dhis2SettingsOf } from './dhis2/settings.js';

/**
 * A source's address is kept beside its watermarks (the cursors table, keyed by source id), so that it
 * stays with the source's other state whatever is done to the source id; OpenCRVS's in meta.
 */
export const SOURCE_IDENTITY_CURSOR = 'source-identity';
export const OPENCRVS_IDENTITY_META = 'identity:opencrvs';

export type IdentityStore = Pick<Ledger, 'getCursor' | 'setCursor' | 'getMeta' | 'setMeta' | 'counts'>;

export interface IdentityChange {
  /** `source <id>` or `opencrvs`: the doctor line's name. */
  name: string;
  /** The setting that changed, as the configuration names it. */
  setting: string;
  /** What the ledger was written against, and what the configuration names now (origin and path only). */
  recorded: string;
  configured: string;
  /** What it means and what to do (docs/deployment.md §8). */
  meaning: string;
}

/** A FHIR source's base URL; a DHIS2 source's server (with or without `/api`) and programme. */
export function sourceIdentity(source: SourceSettings): string {
  const url = normalisedUrl(source.baseUrl);
  if (source.kind !== 'dhis2') return url;
  return `${url.replace(/\/api$/, '')} program ${dhis2SettingsOf(source).program}`;
}

/** The OpenCRVS events API the rows were delivered to (`opencrvs.domain` names one too). */
export function openCrvsIdentity(settings: OpenCrvsSettings): string | undefined {
  return settings.eventsUrl === undefined ? undefined : normalisedUrl(settings.eventsUrl);
}

/** Where the configuration differs from what the ledger was written against (nothing recorded: no change). */
export function identityChanges(ledger: IdentityStore, config: BridgeConfig): IdentityChange[] {
  const changes: IdentityChange[] = [];
  for (const source of config.sources) {
    const recorded = ledger.getCursor(source.id, SOURCE_IDENTITY_CURSOR);
    const configured = sourceIdentity(source);
    if (recorded === undefined || recorded === configured) continue;
    const dhis2 = source.kind === 'dhis2';
    const ids = dhis2 ? 'tracked entity uids' : 'resource ids';
    changes.push({
      name: `source ${source.id}`,
      setting: dhis2 ? `sources[${source.id}].baseUrl or .dhis2.program` : `sources[${source.id}].baseUrl`,
      recorded,
      configured,
      meaning:
        `the ledger was written against ${recorded}; the configuration now names ${configured}. ` +
        `The same ${dhis2 ? 'DHIS2 programme' : 'EMR'} at a new address, its ${ids} kept: nothing is sent twice. ` +
        `Records with other ${ids} (given new ones by a migration, or another ${dhis2 ? 'programme' : 'EMR'}) ` +
        'are new to the ledger: every birth and death stamped after the watermark, all of them if the migration ' +
        'restamped them, would be notified again. Then stop, and give the source a new id with poll.since set to ' +
        "when the migration ended (it is also the new id's go-live: births dated before it are recorded as " +
        'skipped, so list them after the first pass and have any the old source did not deliver declared; ' +
        `docs/deployment.md §8, "A source or OpenCRVS moved"). Recorded, and no longer warned about, after a pass against ${configured} succeeds`,
    });
  }
  const recorded = ledger.getMeta(OPENCRVS_IDENTITY_META);
  const configured = openCrvsIdentity(config.opencrvs);
  if (recorded !== undefined && configured !== undefined && recorded !== configured) {
    const delivered = ledger
      .counts()
      .filter((c) => c.state === 'delivered' || c.state === 'delivered-pending')
      .reduce((sum, c) => sum + c.count, 0);
    changes.push({
      name: 'opencrvs',
      setting: 'opencrvs.eventsUrl (or opencrvs.domain)',
      recorded,
      configured,
      meaning:
        `the ledger's deliveries went to ${recorded}; the configuration now names ${configured}. The ${delivered} ` +
        'row(s) recorded delivered are not sent again (replay takes dead rows only): if this is another OpenCRVS ' +
        'deployment, those events are not in it (docs/deployment.md §8, "A source or OpenCRVS moved"). Recorded, ' +
        `and no longer warned about, once ${configured} answers`,
    });
  }
  return changes;
}

/** Records a source's address, after a pass against it succeeded; true when it was new or changed. */
export function recordSourceIdentity(ledger: IdentityStore, source: SourceSettings): boolean {
  const identity = sourceIdentity(source);
  if (ledger.getCursor(source.id, SOURCE_IDENTITY_CURSOR) === identity) return false;
  ledger.setCursor(source.id, SOURCE_IDENTITY_CURSOR, identity);
  return true;
}

/** Records OpenCRVS's address, once it answered (the routing table resolved there); true when new or changed. */
export function recordOpenCrvsIdentity(ledger: IdentityStore, settings: OpenCrvsSettings): boolean {
  const identity = openCrvsIdentity(settings);
  if (identity === undefined || ledger.getMeta(OPENCRVS_IDENTITY_META) === identity) return false;
  ledger.setMeta(OPENCRVS_IDENTITY_META, identity);
  return true;
}
