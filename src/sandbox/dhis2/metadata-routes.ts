// GET /api/{programs,dataElements,trackedEntityAttributes}/{uid}: the metadata the demo data uses, so that
// `doctor` can check a configured programme, stage, data element or attribute exists, as against DHIS2.
import { type Request, type Response, Router } from 'express';
import {
  ATTRIBUTE_METADATA,
  BABY_POSTNATAL_STAGE,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEATH_STAGE,
  TRACKED_ENTITY_TYPE_PERSON,
} from './constants.js';

type Metadata = Record<string, unknown> & { id: string; displayName: string };

const PROGRAMS: Record<string, Metadata> = {
  [CHILD_PROGRAMME]: {
    id: CHILD_PROGRAMME,
    displayName: 'Child Programme',
    trackedEntityType: { id: TRACKED_ENTITY_TYPE_PERSON },
    programStages: [
      { id: BIRTH_STAGE, displayName: 'Birth' },
      { id: BABY_POSTNATAL_STAGE, displayName: 'Baby Postnatal' },
    ],
  },
  [DEATH_PROGRAMME]: {
    id: DEATH_PROGRAMME,
    displayName: 'Death notification (sandbox)',
    trackedEntityType: { id: TRACKED_ENTITY_TYPE_PERSON },
    programStages: [{ id: DEATH_STAGE, displayName: 'Death' }],
  },
};

/** Whether the simulator's metadata has this programme (the tracker lists refuse any other: export-routes). */
export function isMetadataProgram(uid: string): boolean {
  return Object.hasOwn(PROGRAMS, uid);
}

const DATA_ELEMENTS: Record<string, Metadata> = Object.fromEntries(
  [...Object.entries(BIRTH_DATA_ELEMENTS), ...Object.entries(DEATH_DATA_ELEMENTS)].map(([name, id]) => [
    id,
    { id, displayName: name, valueType: 'TEXT' },
  ]),
);

const ATTRIBUTES: Record<string, Metadata> = Object.fromEntries(
  Object.entries(ATTRIBUTE_METADATA).map(([id, meta]) => [id, { id, ...meta }]),
);

/** DHIS2's 404 body for a metadata object (dhis2-core NotFoundException: "<Type> with id <uid> could not be found."). */
function notFound(res: Response, type: string, uid: string): void {
  res.status(404).json({
    httpStatus: 'Not Found',
    httpStatusCode: 404,
    status: 'ERROR',
    message: `${type} with id ${uid} could not be found.`,
  });
}

export function metadataRoutes(): Router {
  const router = Router();
  const serve = (path: string, type: string, objects: Record<string, Metadata>) =>
    router.get(`/${path}/:uid`, (req: Request<{ uid: string }>, res: Response) => {
      const found = Object.hasOwn(objects, req.params.uid) ? objects[req.params.uid] : undefined;
      if (!found) return notFound(res, type, req.params.uid);
      res.json(found);
    });
  serve('programs', 'Program', PROGRAMS);
  serve('dataElements', 'DataElement', DATA_ELEMENTS);
  serve('trackedEntityAttributes', 'TrackedEntityAttribute', ATTRIBUTES);
  return router;
}
