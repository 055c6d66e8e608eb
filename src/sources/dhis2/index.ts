// A DHIS2 tracker source: client, poller and pipeline built from one `sources[]` entry (kind: dhis2).
import type { ScheduledTask } from 'node-cron';
import type { RoutingSettings, SourceSettings, WriteBackSettings } from '../../config/types.js';
import type { Ledger } from '../../ledger/index.js';
import { loadMappings, type MapOptions, type MappingSet, sourceMappingOptions } from '../../mapping/index.js';
import type { Logger } from '../../observability/logger.js';
import { firstSyncStart } from '../pass.js';
import { SourcePipeline } from '../pipeline.js';
import type { SubjectRecheck } from '../recheck.js';
import { Dhis2Client } from './client.js';
import { Dhis2Poller } from './poller.js';
import { type Dhis2Reader, dhis2Recheck } from './recheck.js';
import { dhis2SettingsOf } from './settings.js';

export { type CallOptions, Dhis2Client, Dhis2SourceError, type ImportStrategy } from './client.js';
export { DHIS2_CONTEXT_CURSOR, DHIS2_CURSOR, Dhis2Poller, type Dhis2PollerDeps } from './poller.js';
export type { ImportReport, TrackerEvent, TrackerTrackedEntity } from './schemas.js';
export { DHIS2_DEFAULTS, dhis2SettingsOf, isOfTrackedEntityType, trackedEntityFilter } from './settings.js';

export interface Dhis2SourceRuntime {
  settings: SourceSettings;
  mappings: MappingSet;
  client: Dhis2Client;
  pipeline: SourcePipeline;
  poller: Dhis2Poller;
  /** Evaluates waiting rows' tracked entities again before their first send. */
  recheck: SubjectRecheck;
  task?: ScheduledTask;
}

export interface BuildDhis2SourceDeps {
  ledger: Ledger;
  logger: Logger;
  country: string;
  version: '2.0' | '1.9';
  routing: RoutingSettings;
  mapOptions: () => MapOptions;
  /**
   * The write-backs of the other sources of the same DHIS2 server (sources/overlap.ts writeBacksOnServer):
   * left out of this source's fingerprints, as its own.
   */
  sameServerWriteBacks?: readonly WriteBackSettings[];
  /** Other sources of the same DHIS2 server and programme (sources/overlap.ts sourcesSharingRecords). */
  sharesRecordsWith?: readonly string[];
  /**
   * The DHIS2 sources built (asked at each recheck, so those built after this one count): the recheck
   * reads a record this source's user is not shown through those of `sharesRecordsWith` (recheck.ts).
   */
  dhis2Sources?: () => readonly Dhis2SourceRuntime[];
  /**
   * Called with the resource type of each changed record more rows read than one change maps again (shared
   * reference data, SourcePipeline's onSharedRecord): bridge_shared_context_records_total counts them.
   */
  onSharedRecord?: (resourceType: string) => void;
}

export function buildDhis2Source(settings: SourceSettings, deps: BuildDhis2SourceDeps): Dhis2SourceRuntime {
  const mappings = loadMappings(sourceMappingOptions(deps, deps.routing, settings, deps.sameServerWriteBacks));
  const client = new Dhis2Client(settings, { logger: deps.logger });
  const pipeline = new SourcePipeline({
    sourceId: settings.id,
    mappings,
    ledger: deps.ledger,
    logger: deps.logger,
    mapOptions: deps.mapOptions,
    reread: (subjectKeys) => recheck(subjectKeys),
    ...(deps.sharesRecordsWith ? { sharesRecordsWith: deps.sharesRecordsWith } : {}),
    ...(deps.onSharedRecord ? { onSharedRecord: deps.onSharedRecord } : {}),
    goLive: () => firstSyncStart(settings.poll, deps.ledger, settings.id),
    ...(settings.timeZone ? { timeZone: settings.timeZone } : {}),
    // A related person is read by uid without the programme (Dhis2Fetcher): the child read the same way
    // tells a person DHIS2 will not serve from a DHIS2 that serves no one.
    probe: async (subjectRef) => {
      const uid = subjectRef?.startsWith('TrackedEntity/') ? subjectRef.slice('TrackedEntity/'.length) : undefined;
      if (uid) await client.trackedEntity(uid, { fields: 'trackedEntity' });
      else await client.systemInfo();
    },
  });
  const poller = new Dhis2Poller({
    sourceId: settings.id,
    client,
    pipeline,
    cursors: deps.ledger,
    dhis2: dhis2SettingsOf(settings),
    poll: settings.poll,
    logger: deps.logger,
    // The org units its watermark has covered: ones added later are read back to go-live once (scope.ts).
    meta: deps.ledger,
    // The mothers this source's births read: read after the programme's pages (Dhis2Poller.contextRecords).
    contextRefs: (after, limit, since) =>
      deps.ledger.contextReadRefs(settings.id, 'TrackedEntity/', after, limit, since),
  });
  const eventTypes = [...new Set(mappings.mappings.map((m) => m.eventType))];
  const recheck: SubjectRecheck = dhis2Recheck({
    sourceId: settings.id,
    client,
    pipeline,
    dhis2: dhis2SettingsOf(settings),
    logger: deps.logger,
    sharing: () => readersFor(settings.id, eventTypes, deps),
    lastReader: (subjectKey) => {
      for (const eventType of eventTypes) {
        const row = deps.ledger.findByKey(settings.id, eventType, subjectKey);
        const reader = row && deps.ledger.readBy(row.id);
        if (reader) return reader;
      }
      return undefined;
    },
  });
  return { settings, mappings, client, pipeline, poller, recheck };
}

/**
 * The sources of the same records (sharesRecordsWith) that map every event type this one does: one that
 * does not map a birth would evaluate the child as no event of its own and leave this source's birth row
 * untouched, so it would go out unchecked.
 */
function readersFor(sourceId: string, eventTypes: readonly string[], deps: BuildDhis2SourceDeps): Dhis2Reader[] {
  const ids = deps.sharesRecordsWith ?? [];
  if (ids.length === 0) return [];
  return (deps.dhis2Sources?.() ?? [])
    .filter(
      (s) =>
        s.settings.id !== sourceId &&
        ids.includes(s.settings.id) &&
        eventTypes.every((type) => s.mappings.mappings.some((m) => m.eventType === type)),
    )
    .map((s) => ({
      sourceId: s.settings.id,
      client: s.client,
      pipeline: s.pipeline,
      dhis2: dhis2SettingsOf(s.settings),
    }));
}
