import type { Resource } from '@medplum/fhirtypes';

// Synthetic EMR records for the demo, the end-to-end tests and the benchmark. A birth is stored the
// way the HL7 BFDR examples record one (CC0: child Patient with birth time, mother Patient and
// RelatedPerson GESTM, maternity and birth Encounters with partOf and a facility Location, LOINC
// 8339-4 birth weight in grams) but as separate EMR resources; a death the way OpenMRS and most
// EMRs record one (Patient.deceasedDateTime). Names are invented; no real person is described.

const GIVEN_FEMALE = ['Amani', 'Neema', 'Zawadi', 'Imani', 'Upendo', 'Rehema', 'Subira', 'Tumaini', 'Baraka', 'Faraja'];
const GIVEN_MALE = ['Juma', 'Baraka', 'Jabari', 'Kito', 'Bahati', 'Zuberi', 'Tendaji', 'Jelani', 'Kamau', 'Chane'];
const FAMILY = [
  'Mwansa',
  'Banda',
  'Phiri',
  'Tembo',
  'Zulu',
  'Mulenga',
  'Chanda',
  'Kapata',
  'Lungu',
  'Musonda',
  'Sakala',
];

export interface DemoFacility {
  /** FHIR Location id in the EMR (the routing table maps `Location/<id>`). */
  id: string;
  name: string;
}

export const DEMO_FACILITIES: DemoFacility[] = [
  { id: 'emr-loc-ibombo-hospital', name: 'Ibombo District Hospital' },
  { id: 'emr-loc-isamba-hospital', name: 'Isamba District Hospital' },
];

const pick = <T>(list: readonly T[], i: number): T => list[i % list.length] as T;
const pad = (n: number) => String(n).padStart(2, '0');

export function facilityLocation(facility: DemoFacility): Resource {
  return {
    resourceType: 'Location',
    id: facility.id,
    status: 'active',
    name: facility.name,
    type: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'HOSP', display: 'Hospital' }] },
    ],
  };
}

export interface GenerateOptions {
  /** Calendar day of the first event, YYYY-MM-DD; events spread over the following days. */
  startDate?: string;
  /** A prefix for ids, so several generated sets can live in one server. */
  prefix?: string;
}

function dayOf(startDate: string, offset: number): string {
  const date = new Date(`${startDate}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + offset);
  return date.toISOString().slice(0, 10);
}

/** One facility birth as 6 resources: mother, child, RelatedPerson, two encounters, birth weight. */
export function generateBirth(i: number, options: GenerateOptions = {}): Resource[] {
  const prefix = options.prefix ?? 'demo';
  const day = dayOf(options.startDate ?? '2026-11-01', i % 20);
  const hour = pad(6 + (i % 14));
  const facility = pick(DEMO_FACILITIES, i);
  const family = pick(FAMILY, i * 7 + 3);
  const female = i % 2 === 0;
  const childId = `${prefix}-birth-${i}-child`;
  const motherId = `${prefix}-birth-${i}-mother`;
  const motherBirthYear = 1988 + (i % 12);
  const maternityId = `${prefix}-birth-${i}-maternity`;
  const locationRef = { reference: `Location/${facility.id}`, display: facility.name };
  return [
    {
      resourceType: 'Patient',
      id: motherId,
      identifier: [{ system: 'urn:demo:emr:mrn', value: `MRN-M-${100000 + i}` }],
      name: [{ use: 'official', family, given: [pick(GIVEN_FEMALE, i * 3 + 1)] }],
      gender: 'female',
      birthDate: `${motherBirthYear}-${pad(1 + (i % 12))}-${pad(1 + (i % 27))}`,
    },
    {
      resourceType: 'Patient',
      id: childId,
      identifier: [{ system: 'urn:demo:emr:mrn', value: `MRN-C-${100000 + i}` }],
      name: [{ use: 'official', family, given: [female ? pick(GIVEN_FEMALE, i) : pick(GIVEN_MALE, i)] }],
      gender: female ? 'female' : 'male',
      birthDate: day,
      _birthDate: {
        extension: [
          {
            url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime',
            valueDateTime: `${day}T${hour}:15:00+02:00`,
          },
        ],
      },
      deceasedBoolean: false,
      multipleBirthInteger: 1,
    } as Resource,
    {
      resourceType: 'RelatedPerson',
      id: `${prefix}-birth-${i}-mother-rp`,
      patient: { reference: `Patient/${childId}` },
      relationship: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode',
              code: 'GESTM',
              display: 'gestational mother',
            },
          ],
        },
      ],
      name: [{ use: 'official', family, given: [pick(GIVEN_FEMALE, i * 3 + 1)] }],
      gender: 'female',
    },
    {
      resourceType: 'Encounter',
      id: maternityId,
      status: 'finished',
      class: {
        system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
        code: 'IMP',
        display: 'inpatient encounter',
      },
      subject: { reference: `Patient/${motherId}` },
      period: { start: `${day}T${pad(Math.max(0, Number(hour) - 4))}:00:00+02:00` },
      location: [{ location: locationRef }],
    },
    {
      resourceType: 'Encounter',
      id: `${prefix}-birth-${i}-birth`,
      status: 'finished',
      class: {
        system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
        code: 'IMP',
        display: 'inpatient encounter',
      },
      subject: { reference: `Patient/${childId}` },
      period: { start: `${day}T${hour}:15:00+02:00` },
      location: [{ location: locationRef }],
      partOf: { reference: `Encounter/${maternityId}` },
    },
    {
      resourceType: 'Observation',
      id: `${prefix}-birth-${i}-weight`,
      status: 'final',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
      ],
      code: { coding: [{ system: 'http://loinc.org', code: '8339-4', display: 'Birth weight Measured' }] },
      subject: { reference: `Patient/${childId}` },
      effectiveDateTime: `${day}T${hour}:30:00+02:00`,
      valueQuantity: { value: 2600 + ((i * 137) % 1400), unit: 'g', system: 'http://unitsofmeasure.org', code: 'g' },
    },
  ];
}

/** One death recorded as an EMR records it: a Patient with deceasedDateTime and a facility encounter. */
export function generateDeath(i: number, options: GenerateOptions = {}): Resource[] {
  const prefix = options.prefix ?? 'demo';
  const day = dayOf(options.startDate ?? '2026-11-01', i % 20);
  const facility = pick(DEMO_FACILITIES, i + 1);
  const female = i % 2 === 1;
  const patientId = `${prefix}-death-${i}-patient`;
  return [
    {
      resourceType: 'Patient',
      id: patientId,
      identifier: [{ system: 'urn:demo:emr:mrn', value: `MRN-D-${100000 + i}` }],
      name: [
        {
          use: 'official',
          family: pick(FAMILY, i * 5 + 2),
          given: [female ? pick(GIVEN_FEMALE, i + 4) : pick(GIVEN_MALE, i + 4)],
        },
      ],
      gender: female ? 'female' : 'male',
      birthDate: `${1940 + (i % 40)}-${pad(1 + (i % 12))}-${pad(2 + (i % 26))}`,
      deceasedDateTime: `${day}T${pad(1 + (i % 22))}:40:00+02:00`,
    } as Resource,
    {
      resourceType: 'Encounter',
      id: `${prefix}-death-${i}-encounter`,
      status: 'finished',
      class: {
        system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
        code: 'IMP',
        display: 'inpatient encounter',
      },
      subject: { reference: `Patient/${patientId}` },
      period: { start: `${dayOf(options.startDate ?? '2026-11-01', Math.max(0, (i % 20) - 2))}T08:00:00+02:00` },
      location: [{ location: { reference: `Location/${facility.id}`, display: facility.name } }],
      hospitalization: {
        dischargeDisposition: {
          coding: [
            { system: 'http://terminology.hl7.org/CodeSystem/discharge-disposition', code: 'exp', display: 'Expired' },
          ],
        },
      },
    },
  ];
}

/** The demo's generated records: `births` births and `deaths` deaths plus the facility Locations. */
export function generateDemoRecords(births: number, deaths: number, options: GenerateOptions = {}): Resource[] {
  const out: Resource[] = DEMO_FACILITIES.map(facilityLocation);
  for (let i = 0; i < births; i++) out.push(...generateBirth(i, options));
  for (let i = 0; i < deaths; i++) out.push(...generateDeath(i, options));
  return out;
}
