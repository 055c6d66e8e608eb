// GET /api/{programs,dataElements,trackedEntityAttributes,organisationUnits,relationshipTypes}/{uid}: the
// metadata the demo data uses, so that `doctor` can check a configured programme, stage, data element,
// attribute, org unit or relationship type exists, and that the uids a mapping names are the programme's,
// as against DHIS2.
import { type Request, type Response, Router } from 'express';
import {
  ATTRIBUTE_METADATA,
  ATTRIBUTES,
  BABY_POSTNATAL_STAGE,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  CHILD_PROGRAMME,
  DATA_ELEMENT_VALUE_TYPES,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEATH_STAGE,
  MOTHER_CHILD_RELATIONSHIP_TYPE,
  ORG_UNIT_TREE,
  TRACKED_ENTITY_TYPE_ATTRIBUTES,
  TRACKED_ENTITY_TYPE_PERSON,
} from './constants.js';
import { applyFields, parseFields } from './fields.js';
import { param } from './query.js';

type Metadata = Record<string, unknown> & { id: string; displayName: string };

// The shapes DHIS2's metadata API gives: a programme's attributes as `programTrackedEntityAttributes[]
// .trackedEntityAttribute`, a stage's data elements as `programStageDataElements[].dataElement`, the tracked
// entity type's own attributes as `trackedEntityTypeAttributes[].trackedEntityAttribute` (each a reference,
// `{ id }`, unless `fields` asks for more of it).
const attributesOf = (uids: readonly string[]) => uids.map((id) => ({ trackedEntityAttribute: { id } }));
const dataElementsOf = (uids: readonly string[]) => uids.map((id) => ({ dataElement: { id } }));

const PERSON = {
  id: TRACKED_ENTITY_TYPE_PERSON,
  displayName: 'Person',
  trackedEntityTypeAttributes: attributesOf([...TRACKED_ENTITY_TYPE_ATTRIBUTES]),
};

const PROGRAMS: Record<string, Metadata> = {
  [CHILD_PROGRAMME]: {
    id: CHILD_PROGRAMME,
    displayName: 'Child Programme',
    trackedEntityType: PERSON,
    // As the demo database lists them: the Person type's names again, and the programme's own attributes.
    programTrackedEntityAttributes: attributesOf([
      ATTRIBUTES.firstName,
      ATTRIBUTES.lastName,
      ATTRIBUTES.gender,
      ATTRIBUTES.nationalId,
      ATTRIBUTES.address,
    ]),
    programStages: [
      {
        id: BIRTH_STAGE,
        displayName: 'Birth',
        programStageDataElements: dataElementsOf(Object.values(BIRTH_DATA_ELEMENTS)),
      },
      // The demo's postnatal data elements are not in the sandbox's data.
      { id: BABY_POSTNATAL_STAGE, displayName: 'Baby Postnatal', programStageDataElements: [] },
    ],
  },
  [DEATH_PROGRAMME]: {
    id: DEATH_PROGRAMME,
    displayName: 'Death notification (sandbox)',
    trackedEntityType: PERSON,
    programTrackedEntityAttributes: attributesOf([
      ATTRIBUTES.firstName,
      ATTRIBUTES.lastName,
      ATTRIBUTES.gender,
      ATTRIBUTES.nationalId,
      ATTRIBUTES.dateOfBirth,
    ]),
    programStages: [
      {
        id: DEATH_STAGE,
        displayName: 'Death',
        programStageDataElements: dataElementsOf(Object.values(DEATH_DATA_ELEMENTS)),
      },
    ],
  },
};

/** Whether the simulator's metadata has this programme (the tracker lists refuse any other: export-routes). */
export function isMetadataProgram(uid: string): boolean {
  return Object.hasOwn(PROGRAMS, uid);
}

/** The simulator's metadata programmes, each with its tracked entity type's uid. */
export function metadataProgramTypes(): Array<{ program: string; type: string }> {
  return Object.values(PROGRAMS).map((p) => ({ program: p.id, type: (p.trackedEntityType as { id: string }).id }));
}

const DATA_ELEMENTS: Record<string, Metadata> = Object.fromEntries(
  [...Object.entries(BIRTH_DATA_ELEMENTS), ...Object.entries(DEATH_DATA_ELEMENTS)].map(([name, id]) => [
    id,
    { id, displayName: name, valueType: DATA_ELEMENT_VALUE_TYPES[id] ?? 'TEXT' },
  ]),
);

const ATTRIBUTE_OBJECTS: Record<string, Metadata> = Object.fromEntries(
  Object.entries(ATTRIBUTE_METADATA).map(([id, meta]) => [id, { id, ...meta }]),
);

// The sandbox's own mother–child type (the demo database has none): child `from`, mother `to`, as its data.
const RELATIONSHIP_TYPES: Record<string, Metadata> = {
  [MOTHER_CHILD_RELATIONSHIP_TYPE]: {
    id: MOTHER_CHILD_RELATIONSHIP_TYPE,
    displayName: 'Child to mother (sandbox)',
    bidirectional: false,
    fromConstraint: {
      relationshipEntity: 'TRACKED_ENTITY_INSTANCE',
      trackedEntityType: { id: TRACKED_ENTITY_TYPE_PERSON },
    },
    toConstraint: {
      relationshipEntity: 'TRACKED_ENTITY_INSTANCE',
      trackedEntityType: { id: TRACKED_ENTITY_TYPE_PERSON },
    },
  },
};

/** DHIS2's 404 body for a metadata object (dhis2-core NotFoundException: "<Type> with id <uid> could not be found."). */
function notFound(res: Response, type: string, uid: string): void {
  res.status(404).json({
    httpStatus: 'Not Found',
    httpStatusCode: 404,
    status: 'ERROR',
    message: `${type} with id ${uid} could not be found.`,
  });
}

/**
 * An org unit as DHIS2 serves it: `path` lists its ancestors' uids and its own from the root
 * (`/ImspTQPwCqd/O6uvpzGd5pu/…`), `level` counts from 1 at the root. One the data uses and the tree does not
 * know hangs nowhere: a root of its own.
 */
function orgUnitObject(uid: string): Metadata {
  const byId = new Map(ORG_UNIT_TREE.map((ou) => [ou.id, ou]));
  const chain: string[] = [];
  for (let at = byId.get(uid); at !== undefined && chain.length < ORG_UNIT_TREE.length; at = byId.get(at.parent ?? ''))
    chain.unshift(at.id);
  const ids = chain.length > 0 ? chain : [uid];
  const parent = byId.get(uid)?.parent;
  return {
    id: uid,
    displayName: byId.get(uid)?.name ?? uid,
    path: `/${ids.join('/')}`,
    level: ids.length,
    ...(parent ? { parent: { id: parent } } : {}),
  };
}

/** `knownOrgUnit`: the simulator's org units (the tree's and those its data uses). */
export function metadataRoutes(knownOrgUnit: (uid: string) => boolean = () => false): Router {
  const router = Router();
  const serve = (path: string, type: string, objects: Record<string, Metadata>) =>
    router.get(`/${path}/:uid`, (req: Request<{ uid: string }>, res: Response) => {
      const found = Object.hasOwn(objects, req.params.uid) ? objects[req.params.uid] : undefined;
      if (!found) return notFound(res, type, req.params.uid);
      const fields = param(new URL(req.originalUrl, 'http://simulator.invalid').searchParams, 'fields');
      res.json(fields ? applyFields(found, parseFields(fields)) : found);
    });
  serve('programs', 'Program', PROGRAMS);
  serve('dataElements', 'DataElement', DATA_ELEMENTS);
  serve('trackedEntityAttributes', 'TrackedEntityAttribute', ATTRIBUTE_OBJECTS);
  router.get('/organisationUnits/:uid', (req: Request<{ uid: string }>, res: Response) => {
    if (!knownOrgUnit(req.params.uid)) return notFound(res, 'OrganisationUnit', req.params.uid);
    const fields = param(new URL(req.originalUrl, 'http://simulator.invalid').searchParams, 'fields');
    const found = orgUnitObject(req.params.uid);
    res.json(fields ? applyFields(found, parseFields(fields)) : found);
  });
  serve('relationshipTypes', 'RelationshipType', RELATIONSHIP_TYPES);
  return router;
}
