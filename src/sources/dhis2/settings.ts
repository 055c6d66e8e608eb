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

/** The filter part of GET /api/tracker/trackedEntities (paging and updatedAfter are the poller's). */
export function trackedEntityFilter(settings: Dhis2Settings): Record<string, string> {
  const params: Record<string, string> = { program: settings.program, fields: settings.fields };
  if (settings.orgUnits?.length) params.orgUnits = settings.orgUnits.join(',');
  if (settings.orgUnitMode) params.orgUnitMode = settings.orgUnitMode;
  if (settings.trackedEntityType) params.trackedEntityType = settings.trackedEntityType;
  if (settings.enrollmentStatus) params.enrollmentStatus = settings.enrollmentStatus;
  return params;
}
