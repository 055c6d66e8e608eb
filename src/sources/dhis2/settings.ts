// The DHIS2 part of a source's configuration with its defaults, and the query the poller sends.
import type { Dhis2Settings, SourceSettings } from '../../config/types.js';

/**
 * Defaults when `sources[].dhis2` is absent: the DHIS2 demo database's Child Programme (the same values as
 * the defaults in profiles/config.schema.json, which ajv fills in when the object is present).
 */
export const DHIS2_DEFAULTS: Dhis2Settings = { program: 'IpHINAT79UW', fields: '*' };

export function dhis2SettingsOf(source: SourceSettings): Dhis2Settings {
  return { ...DHIS2_DEFAULTS, ...source.dhis2 };
}

/**
 * The filter part of GET /api/tracker/trackedEntities (paging and updatedAfter are the poller's). Never
 * `trackedEntityType`: the poll always names its programme, and DHIS2 refuses a list given both ("Program and
 * tracked entity cannot be specified simultaneously": 409 on 2.40 and 2.41, 400 on 2.42+), so the type is
 * applied to what the list answers (isOfTrackedEntityType).
 */
export function trackedEntityFilter(settings: Dhis2Settings): Record<string, string> {
  const params: Record<string, string> = { program: settings.program, fields: settings.fields };
  if (settings.orgUnits?.length) params.orgUnits = settings.orgUnits.join(',');
  if (settings.orgUnitMode) params.orgUnitMode = settings.orgUnitMode;
  if (settings.enrollmentStatus) params.enrollmentStatus = settings.enrollmentStatus;
  return params;
}

/**
 * Whether a listed tracked entity is of the source's `trackedEntityType` (always, without one). One that
 * does not say its type is kept: DHIS2 always does, and the configuration's `fields` must ask for it when a
 * type is set (config/load.ts), so only a server that is not DHIS2 leaves it out, and a birth is not dropped
 * on its word.
 */
export function isOfTrackedEntityType(settings: Dhis2Settings, te: { trackedEntityType?: unknown }): boolean {
  return (
    settings.trackedEntityType === undefined ||
    te.trackedEntityType === undefined ||
    te.trackedEntityType === settings.trackedEntityType
  );
}
