import { ORG_UNIT_TREE, ORG_UNITS } from './constants.js';
import { BadRequestError } from './query.js';

/**
 * The org units of the simulated user, as DHIS2 keeps them on a user: `organisationUnits` (the capture
 * scope: where the user enters and owns data) and `teiSearchOrganisationUnits` (the search scope). Each
 * covers the org units listed and everything below them. A user without search org units searches in
 * their capture scope, as DHIS2 falls back to it.
 */
export interface UserOrgUnits {
  organisationUnits: string[];
  teiSearchOrganisationUnits: string[];
}

const PARENT = new Map(ORG_UNIT_TREE.flatMap((ou) => (ou.parent ? [[ou.id, ou.parent] as const] : [])));

/**
 * By default a superuser whose scopes are the whole tree. A test narrows them (`POST /_sandbox/user`) to
 * show what DHIS2 does with a record whose program owner is outside them: the single-object read with a
 * `program` answers 404, as a record it does not have (dhis2-core #20280, DHIS2-19210), and searches do
 * not list it.
 */
export class SimulatedUser {
  /** Undefined: the superuser, who reaches every org unit (those the tree does not know too). */
  private scopes: UserOrgUnits | undefined;
  /** The programmes whose data the user may read (DHIS2's data sharing); undefined: every one. */
  private programs: ReadonlySet<string> | undefined;

  /** Shares only these programmes' data with the user (`undefined`: every programme's). */
  sharePrograms(programs: readonly string[] | undefined): void {
    this.programs = programs ? new Set(programs) : undefined;
  }

  /** The user may read the programme's data (aclService.canDataRead in dhis2-core). */
  canReadProgram(program: string): boolean {
    return !this.programs || this.programs.has(program);
  }

  /** The superuser (DHIS2's `ALL` authority), whom DHIS2 does not hold to any org unit scope. */
  isSuperuser(): boolean {
    return !this.scopes;
  }

  /** Org units as `/api/me` lists them. */
  orgUnits(): UserOrgUnits {
    return structuredClone(
      this.scopes ?? {
        organisationUnits: [ORG_UNITS.sierraLeone],
        teiSearchOrganisationUnits: [ORG_UNITS.sierraLeone],
      },
    );
  }

  /**
   * Narrows the user's org units to these (search: none unless given, so the capture ones); `undefined`
   * restores the superuser. Unknown org units are refused.
   */
  restrict(scopes: Partial<UserOrgUnits> | undefined, isKnown: (orgUnit: string) => boolean): void {
    if (!scopes) {
      this.scopes = undefined;
      return;
    }
    const capture = scopes.organisationUnits ?? [ORG_UNITS.sierraLeone];
    const search = scopes.teiSearchOrganisationUnits ?? [];
    for (const uid of [...capture, ...search])
      if (!isKnown(uid)) throw new BadRequestError(`Organisation unit does not exist: ${uid}`);
    this.scopes = { organisationUnits: [...capture], teiSearchOrganisationUnits: [...search] };
  }

  /** The org unit is one of the user's capture org units or below one. */
  inCaptureScope(orgUnit: string | undefined): boolean {
    return !this.scopes || within(orgUnit, this.scopes.organisationUnits);
  }

  /** The org unit is in the user's search scope (their capture scope when they have no search org units). */
  inSearchScope(orgUnit: string | undefined): boolean {
    if (!this.scopes) return true;
    const search = this.scopes.teiSearchOrganisationUnits;
    return within(orgUnit, search.length > 0 ? search : this.scopes.organisationUnits);
  }
}

/** `orgUnit` is one of `roots` or below one (org units outside the tree have no parent). */
function within(orgUnit: string | undefined, roots: readonly string[]): boolean {
  for (let at = orgUnit; at !== undefined; at = PARENT.get(at)) if (roots.includes(at)) return true;
  return false;
}
