import {
  ATTRIBUTES,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEATH_STAGE,
  DEFAULT_ATTRIBUTE_OPTION_COMBO,
  DEFAULT_CATEGORY_OPTION,
  DEMO_FACILITIES,
  MOTHER_CHILD_RELATIONSHIP_TYPE,
  TRACKED_ENTITY_TYPE_PERSON,
} from './constants.js';
import { formatDhis2DateTime, generateUid, parseDhis2DateTime } from './time.js';
import type { Attribute, DataValue, TrackedEntity } from './types.js';

export interface DemoChildProgrammeOptions {
  births: number;
  deaths: number;
  /** PRNG seed: the same seed and baseDate give the same data, uids included. */
  seed?: number;
  /** Records are last updated in the 12 hours before this instant (default: now), events happen days before. */
  baseDate?: string;
}

// Invented names for invented people; common in Sierra Leone so the demo reads plausibly.
const FEMALE = ['Aminata', 'Fatmata', 'Isatu', 'Mariama', 'Hawa', 'Kadiatu', 'Adama', 'Zainab', 'Memuna', 'Jeneba'];
const MALE = ['Mohamed', 'Ibrahim', 'Abu', 'Sahr', 'Foday', 'Musa', 'Abdul', 'Alusine', 'Santigie', 'Tamba'];
const SURNAMES = ['Kamara', 'Sesay', 'Conteh', 'Koroma', 'Bangura', 'Turay', 'Kargbo', 'Jalloh', 'Mansaray', 'Fofanah'];
const CAUSES = ['I21.9', 'J18.9', 'B54', 'A09', 'E14.9', 'I64', 'C50.9'];
const DAY = 86_400_000;
/** Demo records are spread over this window before baseDate, so a first poll of "the last 24 h" finds them all. */
const UPDATE_WINDOW_MS = 12 * 3_600_000;

/** mulberry32: small, seedable, good enough to vary demo data. */
function prng(seed: number): (max: number) => number {
  let state = seed >>> 0;
  return (max) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * max);
  };
}

function attribute(id: string, value: string, at: string): Attribute {
  return { attribute: id, value, createdAt: at, updatedAt: at };
}

function dataValue(id: string, value: string, at: string): DataValue {
  return { dataElement: id, value, createdAt: at, updatedAt: at, providedElsewhere: false };
}

/**
 * N births in the Sierra Leone demo "Child Programme" (child enrolled, a completed Birth-stage event with
 * weight, BCG and Apgar values, and a relationship child → mother to a separate, unenrolled mother), and
 * M deaths in the sandbox's own death notification programme. Nested import shape, ready for `seed()`.
 */
export function buildDemoChildProgramme(options: DemoChildProgrammeOptions): TrackedEntity[] {
  const random = prng(options.seed ?? 1);
  const pick = <T>(list: readonly T[]): T => list[random(list.length)] as T;
  const base = options.baseDate === undefined ? Date.now() : parseDhis2DateTime(options.baseDate);
  if (base === undefined) throw new Error(`buildDemoChildProgramme: baseDate is not an ISO date: ${options.baseDate}`);
  const total = options.births + options.deaths;
  const step = Math.max(1, Math.min(60_000, Math.floor(UPDATE_WINDOW_MS / Math.max(1, total))));
  const uid = () => generateUid(random);
  const out: TrackedEntity[] = [];
  const common = {
    attributeOptionCombo: DEFAULT_ATTRIBUTE_OPTION_COMBO,
    attributeCategoryOptions: DEFAULT_CATEGORY_OPTION,
  };

  for (let i = 0; i < total; i++) {
    const at = formatDhis2DateTime(base - (total - i) * step);
    const orgUnit = pick(DEMO_FACILITIES);
    const day = formatDhis2DateTime(Math.floor((base - (1 + random(28)) * DAY) / DAY) * DAY);
    const surname = pick(SURNAMES);
    const stamps = { createdAt: at, updatedAt: at };
    const person = { trackedEntityType: TRACKED_ENTITY_TYPE_PERSON, orgUnit, ...stamps };

    if (i < options.births) {
      const mother: TrackedEntity = {
        ...person,
        trackedEntity: uid(),
        createdAt: formatDhis2DateTime(base - (total - i) * step - 1),
        updatedAt: formatDhis2DateTime(base - (total - i) * step - 1),
        attributes: [attribute(ATTRIBUTES.firstName, pick(FEMALE), at), attribute(ATTRIBUTES.lastName, surname, at)],
      };
      const male = random(2) === 0;
      const childUid = uid();
      const enrollment = uid();
      out.push(mother, {
        ...person,
        trackedEntity: childUid,
        attributes: [
          attribute(ATTRIBUTES.firstName, pick(male ? MALE : FEMALE), at),
          attribute(ATTRIBUTES.lastName, surname, at),
          attribute(ATTRIBUTES.gender, male ? 'Male' : 'Female', at),
        ],
        enrollments: [
          {
            enrollment,
            program: CHILD_PROGRAMME,
            orgUnit,
            status: 'ACTIVE',
            enrolledAt: day,
            occurredAt: day,
            ...stamps,
            events: [
              {
                event: uid(),
                program: CHILD_PROGRAMME,
                programStage: BIRTH_STAGE,
                enrollment,
                orgUnit,
                status: 'COMPLETED',
                occurredAt: day,
                completedAt: at,
                ...common,
                ...stamps,
                dataValues: [
                  dataValue(BIRTH_DATA_ELEMENTS.weightGrams, String(2400 + random(1800)), at),
                  dataValue(BIRTH_DATA_ELEMENTS.bcgDose, random(4) === 0 ? 'false' : 'true', at),
                  dataValue(BIRTH_DATA_ELEMENTS.apgarScore, String(6 + random(5)), at),
                ],
              },
            ],
          },
        ],
        relationships: [
          {
            relationship: uid(),
            relationshipType: MOTHER_CHILD_RELATIONSHIP_TYPE,
            ...stamps,
            from: { trackedEntity: { trackedEntity: childUid } },
            to: { trackedEntity: { trackedEntity: mother.trackedEntity ?? '' } },
          },
        ],
      });
      continue;
    }

    const male = random(2) === 0;
    const enrollment = uid();
    const born = formatDhis2DateTime(Date.parse(`${day.slice(0, 10)}T00:00:00Z`) - (40 + random(50)) * 365.25 * DAY);
    out.push({
      ...person,
      trackedEntity: uid(),
      attributes: [
        attribute(ATTRIBUTES.firstName, pick(male ? MALE : FEMALE), at),
        attribute(ATTRIBUTES.lastName, surname, at),
        attribute(ATTRIBUTES.gender, male ? 'Male' : 'Female', at),
        attribute(ATTRIBUTES.nationalId, String(100_000_000 + random(900_000_000)), at),
        attribute(ATTRIBUTES.dateOfBirth, born.slice(0, 10), at),
      ],
      enrollments: [
        {
          enrollment,
          program: DEATH_PROGRAMME,
          orgUnit,
          status: 'COMPLETED',
          enrolledAt: day,
          occurredAt: day,
          ...stamps,
          events: [
            {
              event: uid(),
              program: DEATH_PROGRAMME,
              programStage: DEATH_STAGE,
              enrollment,
              orgUnit,
              status: 'COMPLETED',
              occurredAt: day,
              completedAt: at,
              ...common,
              ...stamps,
              dataValues: [
                dataValue(DEATH_DATA_ELEMENTS.dateOfDeath, day.slice(0, 10), at),
                dataValue(DEATH_DATA_ELEMENTS.causeOfDeath, pick(CAUSES), at),
                dataValue(DEATH_DATA_ELEMENTS.mannerOfDeath, random(10) === 0 ? 'ACCIDENT' : 'NATURAL_CAUSES', at),
              ],
            },
          ],
        },
      ],
    });
  }
  return out;
}
