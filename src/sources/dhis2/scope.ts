// The org units a DHIS2 source's watermark has covered, kept in the ledger's meta. The poller reads on
// from its watermark, so an org unit added to sources[].dhis2.orgUnits after go-live would have every
// record it holds from before the watermark left unread: the poller reads such units once from go-live
// up to the watermark (Dhis2Poller.catchUp) and only then records the wider scope.
import type { Dhis2OrgUnitMode, Dhis2Settings } from '../../config/types.js';

/** Org units (sorted, each once) and the mode DHIS2 applies to them. */
export interface OrgUnitScope {
  orgUnits: string[];
  orgUnitMode: Dhis2OrgUnitMode;
}

/**
 * What the meta key holds: the scope covered, and a catch-up of a wider one stopped short (a page budget,
 * a shutdown) with where it goes on from (`from`; absent: go-live). A catch-up that failed stores nothing,
 * so the next pass begins it again from where the last stored one stopped.
 */
export interface OrgUnitScopeRecord {
  scope: OrgUnitScope;
  catchUp?: { scope: OrgUnitScope; from?: string };
}

/** Source-scoped (ledger/sources.ts sourceMetaKeys): a rename moves it with the source. */
export function orgUnitScopeKey(sourceId: string): string {
  return `dhis2.orgUnitScope:${sourceId}`;
}

/** Modes that take no org unit: the user's scopes (ACCESSIBLE, CAPTURE) or every org unit (ALL). */
const UNITLESS: readonly Dhis2OrgUnitMode[] = ['ACCESSIBLE', 'CAPTURE', 'ALL'];
/** Modes over org units, each covering what the one before it does (the unit; its children; below it). */
const DEPTH: readonly Dhis2OrgUnitMode[] = ['SELECTED', 'CHILDREN', 'DESCENDANTS'];

/** The scope a source's settings ask DHIS2 for, with DHIS2's own default mode made explicit. */
export function configuredScope(settings: Dhis2Settings): OrgUnitScope {
  const orgUnits = [...new Set(settings.orgUnits ?? [])].sort();
  return { orgUnits, orgUnitMode: settings.orgUnitMode ?? (orgUnits.length > 0 ? 'SELECTED' : 'ACCESSIBLE') };
}

export function sameScope(a: OrgUnitScope, b: OrgUnitScope): boolean {
  return a.orgUnitMode === b.orgUnitMode && a.orgUnits.join(',') === b.orgUnits.join(',');
}

/**
 * The part of `configured` that `covered` may not hold, to be read from go-live, or undefined when none.
 * Only what can be told without the org unit tree: a mode going deeper, or to one without org units (other
 * than from ALL or ACCESSIBLE, which hold every unit the user may search), reads the whole configured scope;
 * the same or a shallower mode reads the units not covered. Reading more than needed costs calls only: the
 * ledger records a birth already recorded as unchanged.
 */
export function unreadScope(covered: OrgUnitScope, configured: OrgUnitScope): OrgUnitScope | undefined {
  if (covered.orgUnitMode === 'ALL') return undefined;
  if (UNITLESS.includes(configured.orgUnitMode))
    return configured.orgUnitMode === covered.orgUnitMode ? undefined : configured;
  if (covered.orgUnitMode === 'ACCESSIBLE') return undefined;
  const deeper = DEPTH.indexOf(configured.orgUnitMode) > DEPTH.indexOf(covered.orgUnitMode);
  if (covered.orgUnitMode === 'CAPTURE' || deeper) return configured;
  const added = configured.orgUnits.filter((uid) => !covered.orgUnits.includes(uid));
  return added.length > 0 ? { orgUnits: added, orgUnitMode: configured.orgUnitMode } : undefined;
}

/** A value the poller stored in the ledger's meta as a JSON object; undefined for none, or one not JSON or no object. */
export function storedObject(value: string | undefined): Record<string, unknown> | undefined {
  if (!value) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The stored record, or undefined for none or one this code cannot read (taken as none: see docs/dhis2.md). */
export function parseScopeRecord(value: string | undefined): OrgUnitScopeRecord | undefined {
  const parsed = storedObject(value);
  if (!parsed) return undefined;
  const { scope, catchUp } = parsed;
  const covered = scopeOf(scope);
  if (!covered) return undefined;
  if (typeof catchUp !== 'object' || catchUp === null) return { scope: covered };
  const pending = catchUp as Record<string, unknown>;
  const reading = scopeOf(pending.scope);
  if (!reading || (pending.from !== undefined && typeof pending.from !== 'string')) return { scope: covered };
  return { scope: covered, catchUp: { scope: reading, ...(pending.from !== undefined ? { from: pending.from } : {}) } };
}

function scopeOf(value: unknown): OrgUnitScope | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { orgUnits, orgUnitMode } = value as Record<string, unknown>;
  if (!Array.isArray(orgUnits) || !orgUnits.every((uid) => typeof uid === 'string')) return undefined;
  const mode = [...UNITLESS, ...DEPTH].find((m) => m === orgUnitMode);
  return mode === undefined ? undefined : { orgUnits: [...orgUnits].sort(), orgUnitMode: mode };
}
