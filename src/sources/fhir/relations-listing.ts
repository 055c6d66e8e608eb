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

/** A subject born longer ago than this is not listed for: what was listed for it stays empty. */
export const LISTING_MAX_AGE_DAYS = 366;
/** Page size asked (OpenMRS FHIR2's default maximum), and the pages read before the listing counts as cut short. */
export const LISTING_PAGE_SIZE = '100';
export const LISTING_MAX_PAGES = 20;

const DAY_MS = 86_400_000;

/** The Patient a `RelatedPerson?patient=Patient/<id>` search (that parameter alone) is about, else undefined. */
export function relationsSearchSubject(type: string, params: Record<string, string>): string | undefined {
  const names = Object.keys(params).filter((name) => !name.startsWith('_'));
  if (type !== 'RelatedPerson' || names.length !== 1 || names[0] !== 'patient') return undefined;
  const ref = parseReference(params.patient ?? '');
  return ref?.type === 'Patient' ? ref.id : undefined;
}

/**
 * The listing's parameters for a subject with this birth date: relationships recorded from the day before
 * it (a server clock in another time zone than the birth's), or undefined when it is no full date, or
 * more than LISTING_MAX_AGE_DAYS ago.
 */
export function listingParams(birthDate: unknown, now: number): Record<string, string> | undefined {
  if (typeof birthDate !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(birthDate)) return undefined;
  const born = Date.parse(`${birthDate}T00:00:00Z`);
  if (Number.isNaN(born) || now - born > LISTING_MAX_AGE_DAYS * DAY_MS) return undefined;
  const from = new Date(born - DAY_MS).toISOString().slice(0, 10);
  return { _lastUpdated: `ge${from}`, _count: LISTING_PAGE_SIZE };
}

/** The listed RelatedPersons whose patient is this Patient. */
export function relationsOf(listed: readonly Resource[], patientId: string): Resource[] {
  return listed.filter((r) => {
    if (r.resourceType !== 'RelatedPerson') return false;
    const ref = typeof r.patient?.reference === 'string' ? parseReference(r.patient.reference) : undefined;
    return ref?.type === 'Patient' && ref.id === patientId;
  });
}
