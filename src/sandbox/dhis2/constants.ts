/**
 * Metadata identifiers the simulator and its demo data use.
 *
 * Two kinds, kept apart on purpose:
 * - Sierra Leone demo database ("SL demo") ids, as they appear in the dhis2-docs tracker examples and in
 *   the OpenFn dhis2-opencrvs workflow facts (test/fixtures/dhis2/PROVENANCE.md lists where each came from).
 *   A bridge configured with these works against play.dhis2.org-style demo servers.
 * - Sandbox-own ids (prefix `Sbx`): the demo database has no standard death notification programme and no
 *   verified mother–child relationship type, so the simulator invents valid-looking uids for them. They
 *   exist nowhere but here; a real deployment configures its own.
 */

/** CLI default port of the simulator (`opencrvs-bridge sandbox`). */
export const DEFAULT_DHIS2_SIMULATOR_PORT = 8091;

/** Version reported by GET /api/system/info; the paging envelope defaults follow 2.41. */
export const SIMULATED_DHIS2_VERSION = '2.41.3';

/** Tracked entity type "Person" (SL demo; docs POST examples and GET trackedEntities/{uid}). */
export const TRACKED_ENTITY_TYPE_PERSON = 'nEenWmSyUEp';

/** "Child Programme" (SL demo; docs examples, OpenFn workflow `program=IpHINAT79UW`). */
export const CHILD_PROGRAMME = 'IpHINAT79UW';
/** Child Programme stage "Birth" (SL demo; docs nested POST example, OpenFn write-back stage). */
export const BIRTH_STAGE = 'A03MvHHogjR';
/** Child Programme stage "Baby Postnatal" (SL demo; docs GET trackedEntities/{uid} example). */
export const BABY_POSTNATAL_STAGE = 'ZzYYXq4fJie';

/** Tracked entity attributes (SL demo). */
export const ATTRIBUTES = {
  /** "First name", code MMD_PER_NAM (docs GET trackedEntities/{uid}; OpenFn `child.name.firstname`). */
  firstName: 'w75KJ2mc4zz',
  /** "Last name" (docs GET trackedEntities/{uid}; OpenFn `child.name.surname`). */
  lastName: 'zDhUuAYrxNC',
  /** "Gender", options Male/Female (docs GET trackedEntities/{uid}; OpenFn `child.gender`). */
  gender: 'cejWyOfXge6',
  /** "National identifier" (docs GET trackedEntities/{uid}). */
  nationalId: 'AuPLng5hLbE',
  /** "Address", code MMD_PER_ADR1 (docs GET trackedEntities/{uid}). */
  address: 'VqEFza8wbwA',
  /** Sandbox-own "Date of birth" attribute for deceased persons (the SL demo id is not verified). */
  dateOfBirth: 'SbxAttrDob1',
  /**
   * Sandbox-own TEXT attribute of the Person type for the OpenCRVS tracking id (`writeBack.attribute`), as
   * a deployment would add one: the demo database has none, and its National identifier is the child's.
   */
  trackingId: 'SbxTrkIdAtt',
} as const;

/**
 * The Person type's own attributes: the only ones DHIS2 lists at the top of a tracked entity read without
 * a `program` (docs GET trackedEntities/{uid}: First name, Last name at the top; National identifier,
 * Gender, Address only under the Child Programme enrollment). The others are programme attributes.
 */
export const TRACKED_ENTITY_TYPE_ATTRIBUTES: ReadonlySet<string> = new Set([
  ATTRIBUTES.firstName,
  ATTRIBUTES.lastName,
  ATTRIBUTES.trackingId,
]);

/** Display names and value types the simulator reports for the attributes above. */
export const ATTRIBUTE_METADATA: Record<string, { displayName: string; valueType: string; code?: string }> = {
  [ATTRIBUTES.firstName]: { displayName: 'First name', valueType: 'TEXT', code: 'MMD_PER_NAM' },
  [ATTRIBUTES.lastName]: { displayName: 'Last name', valueType: 'TEXT' },
  [ATTRIBUTES.gender]: { displayName: 'Gender', valueType: 'TEXT' },
  [ATTRIBUTES.nationalId]: { displayName: 'National identifier', valueType: 'TEXT', code: 'National identifier' },
  [ATTRIBUTES.address]: { displayName: 'Address', valueType: 'TEXT', code: 'MMD_PER_ADR1' },
  [ATTRIBUTES.dateOfBirth]: { displayName: 'Date of birth', valueType: 'DATE' },
  [ATTRIBUTES.trackingId]: { displayName: 'OpenCRVS tracking id (sandbox)', valueType: 'TEXT' },
};

/** Birth stage data elements (SL demo). */
export const BIRTH_DATA_ELEMENTS = {
  /** "MCH Weight (g)" (docs nested POST example sends 5.7; demo metadata says grams). */
  weightGrams: 'UXz7xuGCEhU',
  /** "MCH BCG dose", boolean (docs nested POST example). */
  bcgDose: 'bx6fsa0t90x',
  /** "MCH Apgar Score" (SL demo metadata, per the OpenFn mapping notes). */
  apgarScore: 'a3kGcGDCuk6',
  /**
   * Where the OpenFn workflow writes the OpenCRVS tracking id back. A third-party copy of the demo
   * metadata names it "Birth certificate" with valueType FILE_RESOURCE; the simulator accepts text.
   */
  trackingId: 'uf3svrmp8Oj',
} as const;

/** Sandbox-own death notification programme (no standard one exists in the SL demo database). */
export const DEATH_PROGRAMME = 'SbxDthProg1';
export const DEATH_STAGE = 'SbxDthStage';
export const DEATH_DATA_ELEMENTS = {
  /** Date of death, DATE. */
  dateOfDeath: 'SbxDeDthDat',
  /** Cause of death as free text (an ICD-10 code in the demo data). */
  causeOfDeath: 'SbxDeCause1',
  /** Manner of death: NATURAL_CAUSES | ACCIDENT | SUICIDE | HOMICIDE | MANNER_UNDETERMINED. */
  mannerOfDeath: 'SbxDeManner',
  /** Where the bridge writes the OpenCRVS tracking id back. */
  trackingId: 'SbxDeTrkId1',
} as const;

/**
 * Value types the simulator reports for the data elements above (`GET /api/dataElements/<uid>`), as the
 * demo metadata has them; any data element not listed is TEXT. Imports do not check them.
 */
export const DATA_ELEMENT_VALUE_TYPES: Record<string, string> = {
  [BIRTH_DATA_ELEMENTS.weightGrams]: 'NUMBER',
  [BIRTH_DATA_ELEMENTS.bcgDose]: 'BOOLEAN',
  [BIRTH_DATA_ELEMENTS.apgarScore]: 'NUMBER',
  [DEATH_DATA_ELEMENTS.dateOfDeath]: 'DATE',
};

/** Sandbox-own relationship type linking a child (from) to its mother (to). */
export const MOTHER_CHILD_RELATIONSHIP_TYPE = 'SbxRelChMot';

/** Attribute option combo "default" (SL demo; every docs event example). */
export const DEFAULT_ATTRIBUTE_OPTION_COMBO = 'HllvX50cXC0';
/** Category option "default" (SL demo; every docs event example). */
export const DEFAULT_CATEGORY_OPTION = 'xYerKDKCefk';

/** Organisation units (SL demo) used by the demo data and by orgUnitMode=DESCENDANTS. */
export const ORG_UNITS = {
  /** "Sierra Leone", the root of the demo hierarchy. */
  sierraLeone: 'ImspTQPwCqd',
  /** "Bo" district (used as orgUnit in the dhis2-core e2e import payloads). */
  bo: 'O6uvpzGd5pu',
  /** "Badjia" chiefdom in Bo. */
  badjia: 'YuQRtpLP10I',
  /** "Ngelehun CHC" (docs GET examples; the OpenFn workflow polls `orgUnits=DiszpKrYNg8`). */
  ngelehunChc: 'DiszpKrYNg8',
  /** "Gbenikoro MCHP" (docs POST examples). Its district is not verified: the sandbox hangs it off the root. */
  gbenikoroMchp: 'y77LiPqLMoq',
} as const;

export interface OrgUnitInfo {
  id: string;
  name: string;
  parent?: string;
}

/** The sandbox's organisation unit tree (child → parent). */
export const ORG_UNIT_TREE: readonly OrgUnitInfo[] = [
  { id: ORG_UNITS.sierraLeone, name: 'Sierra Leone' },
  { id: ORG_UNITS.bo, name: 'Bo', parent: ORG_UNITS.sierraLeone },
  { id: ORG_UNITS.badjia, name: 'Badjia', parent: ORG_UNITS.bo },
  { id: ORG_UNITS.ngelehunChc, name: 'Ngelehun CHC', parent: ORG_UNITS.badjia },
  { id: ORG_UNITS.gbenikoroMchp, name: 'Gbenikoro MCHP', parent: ORG_UNITS.sierraLeone },
];

/** Facilities the demo generator spreads births and deaths over (a routing table maps these). */
export const DEMO_FACILITIES: readonly string[] = [ORG_UNITS.ngelehunChc, ORG_UNITS.gbenikoroMchp];
