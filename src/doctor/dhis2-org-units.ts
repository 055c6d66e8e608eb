// doctor: the org units of sources[].dhis2.orgUnits against DHIS2. Each must exist, and be within the
// search scope of the source's user: DHIS2 2.41+ refuses a whole tracked entity list naming one outside it
// (403 "Organisation unit is not part of the search scope: <uid>", OperationsParamsValidator
// .validateOrgUnits), so one such org unit stops every poll of the source. With a write-back, each must
// also be within the user's capture scope: DHIS2 refuses writes below an org unit the user does not own
// (E1000, E1102), write after write.
import type { SourceSettings } from '../config/types.js';
import type { Dhis2Client } from '../sources/dhis2/client.js';
import { dhis2SettingsOf } from '../sources/dhis2/settings.js';
import { type CheckResult, fail, ok } from './types.js';

/** Org units looked up, at most: one call each, and a configuration names a few. */
const MAX_CHECKED = 50;

/** The uids of a `[{ id }]` list in DHIS2's answer (undefined when it is no such list). */
function ids(list: unknown): string[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return list.flatMap((item) =>
    typeof item === 'object' && item !== null && typeof (item as { id?: unknown }).id === 'string'
      ? [(item as { id: string }).id]
      : [],
  );
}

/**
 * One result for the source's org units: fail naming each one missing, or outside the scope to grant;
 * nothing when the source names none (it polls what the user may search: no org unit to be wrong).
 */
export async function checkDhis2OrgUnits(
  client: Dhis2Client,
  settings: SourceSettings,
  at: string,
): Promise<CheckResult | undefined> {
  const orgUnits = dhis2SettingsOf(settings).orgUnits ?? [];
  if (orgUnits.length === 0) return undefined;
  const name = `source ${settings.id} org units`;
  const key = `${at}.dhis2.orgUnits`;
  const checked = orgUnits.slice(0, MAX_CHECKED);
  // DHIS2's `path` (`/root/…/uid`) holds the org unit and its ancestors: a scope covers what is below it.
  const paths = new Map<string, string[]>();
  const problems: string[] = [];
  for (const uid of checked) {
    const found = await client.metadata('organisationUnits', uid, 'id,path');
    if (!found) problems.push(`${key} ${uid}: no such org unit in DHIS2`);
    else paths.set(uid, typeof found.path === 'string' ? found.path.split('/').filter(Boolean) : [uid]);
  }
  const me = await client.me();
  const superuser = Array.isArray(me.authorities) && me.authorities.includes('ALL');
  const capture = ids(me.organisationUnits) ?? [];
  const searchOwn = ids(me.teiSearchOrganisationUnits) ?? [];
  // DHIS2 searches in the capture scope when the user has no search org units
  // (getTeiSearchOrganisationUnitsWithFallback); a superuser (ALL) is held to neither.
  const search = searchOwn.length > 0 ? searchOwn : capture;
  const within = (path: string[], roots: string[]) => path.some((uid) => roots.includes(uid));
  const auth = `${at}.auth`;
  if (!superuser) {
    for (const [uid, path] of paths) {
      if (!within(path, search))
        problems.push(
          `${key} ${uid} is outside the search scope of the user of ${auth}: DHIS2 refuses every poll naming it ` +
            `(HTTP 403 "Organisation unit is not part of the search scope"); in DHIS2, give that user ${uid}, or an ` +
            `org unit above it, as a search org unit ("Search organisation units"), or remove it from ${key}`,
        );
      else if (settings.writeBack && !within(path, capture))
        problems.push(
          `${key} ${uid} is outside the capture scope of the user of ${auth}: DHIS2 refuses the write-back to ` +
            `records there (E1000, E1102); in DHIS2, give that user ${uid}, or an org unit above it, as a data ` +
            `capture org unit ("Data capture and maintenance organisation units")`,
        );
    }
  }
  const more = orgUnits.length > checked.length ? ` (the first ${checked.length} of ${orgUnits.length})` : '';
  if (problems.length > 0) return fail(name, `${problems.join('; ')}${more}`);
  const scopes = superuser
    ? 'the user of the auth is a superuser (ALL), held to no org unit scope'
    : `within the user's search scope${settings.writeBack ? ' and capture scope (for the write-back)' : ''}`;
  return ok(name, `${checked.join(', ')}${more} found in DHIS2, ${scopes}`);
}
