// A child's relations on a server that takes no `RelatedPerson?patient=`: OpenMRS FHIR2. Its RelatedPerson
// search takes only name, gender, birthdate, the address parameters, _id and _lastUpdated (with
// _include=RelatedPerson:patient); its Patient search allows no `_revinclude` of RelatedPerson, and its
// Patient/$everything leaves RelatedPerson out. Each of its RelatedPersons is an OpenMRS relationship: the
// related person is its person A, and `patient` its person B ("Parent/Child": the parent, and the child).
// So what it serves to reach a newborn's mother is the relationships recorded since the birth, kept where
// `patient` is the child. An OpenMRS encounter's partOf is its visit, whose patient is the encounter's own,
// so no encounter leads from the child to the mother either (docs/fhir-sources.md, "OpenMRS").
//
// Only for a subject born recently: the listing holds every relationship the site recorded since the
// birth, which for an adult is the site's whole history.
import type { Resource } from '@medplum/fhirtypes';
import { parseReference } from '../../mapping/index.js';
import type { SearchParams } from './fhir-client.js';

/** A subject born longer ago than this is not listed for: what was listed for it stays empty. */
export const LISTING_MAX_AGE_DAYS = 366;
/** Page size asked (OpenMRS FHIR2's default maximum). */
export const LISTING_PAGE_SIZE = 100;
/**
 * The relationships recorded since a birth read at most (20 pages): past it the birth goes without them (a
 * part of them could leave the mother out and name an aunt as the one woman linked). What a pass holds.
 */
export const LISTING_MAX_RELATIONS = 2_000;

const DAY_MS = 86_400_000;

/** The Patient a `RelatedPerson?patient=Patient/<id>` search (that parameter alone) is about, else undefined. */
export function relationsSearchSubject(type: string, params: Record<string, string>): string | undefined {
  const names = Object.keys(params).filter((name) => !name.startsWith('_'));
  if (type !== 'RelatedPerson' || names.length !== 1 || names[0] !== 'patient') return undefined;
  const ref = parseReference(params.patient ?? '');
  return ref?.type === 'Patient' ? ref.id : undefined;
}

/**
 * The day a subject with this birth date is listed from: the day before it (a server clock in another time
 * zone than the birth's), or undefined when it is no full date, or more than LISTING_MAX_AGE_DAYS ago.
 */
export function listingStart(birthDate: unknown, now: number): string | undefined {
  if (typeof birthDate !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(birthDate)) return undefined;
  const born = Date.parse(`${birthDate}T00:00:00Z`);
  if (Number.isNaN(born) || now - born > LISTING_MAX_AGE_DAYS * DAY_MS) return undefined;
  return new Date(born - DAY_MS).toISOString().slice(0, 10);
}

/**
 * The listing's parameters for the relationships recorded from day `from` up to (not on) day `before` (none:
 * up to now), `budget` of them at most (in pages of LISTING_PAGE_SIZE, at least one). Days, both read in the
 * server's time zone: a range ending `lt` a day and one starting `ge` it meet without overlap.
 */
export function rangeParams(
  from: string,
  before: string | undefined,
  budget: number,
): { params: SearchParams; pages: number } {
  const lastUpdated = before === undefined ? `ge${from}` : [`ge${from}`, `lt${before}`];
  const pages = Math.max(1, Math.ceil(budget / LISTING_PAGE_SIZE));
  return { params: { _lastUpdated: lastUpdated, _count: String(LISTING_PAGE_SIZE) }, pages };
}

/** The listed RelatedPersons whose patient is this Patient. */
export function relationsOf(listed: readonly Resource[], patientId: string): Resource[] {
  return listed.filter((r) => {
    if (r.resourceType !== 'RelatedPerson') return false;
    const ref = typeof r.patient?.reference === 'string' ? parseReference(r.patient.reference) : undefined;
    return ref?.type === 'Patient' && ref.id === patientId;
  });
}
