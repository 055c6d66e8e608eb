import { type Request, type Response, Router } from 'express';
import { dhis2Error } from './auth.js';
import { ORG_UNIT_TREE } from './constants.js';
import { applyFields, parseFields } from './fields.js';
import { isMetadataProgram, metadataProgramTypes } from './metadata-routes.js';
import {
  attributeFilters,
  BadRequestError,
  boolParam,
  comparator,
  listParam,
  orgUnitScope,
  type PageEnvelope,
  pageOf,
  param,
  parsePaging,
  type TieOrder,
  updatedWindow,
} from './query.js';
import type { TrackerStore } from './store.js';
import type { Event, RelationshipItem, TrackedEntity } from './types.js';
import type { SimulatedUser } from './user.js';

/** Default `fields` of each export endpoint (dhis2-core request params, 2.41). */
const DEFAULT_FIELDS = {
  trackedEntities: '*,!relationships,!enrollments,!events,!programOwners',
  enrollments: '*,!relationships,!events,!attributes',
  events: '*,!relationships',
  relationships:
    'relationship,relationshipType,createdAtClient,from[trackedEntity[trackedEntity],enrollment[enrollment],event[event]],to[trackedEntity[trackedEntity],enrollment[enrollment],event[event]]',
};

const ORDERABLE = {
  trackedEntities: [
    'createdAt',
    'createdAtClient',
    'enrolledAt',
    'inactive',
    'trackedEntity',
    'updatedAt',
    'updatedAtClient',
  ],
  enrollments: [
    'completedAt',
    'createdAt',
    'createdAtClient',
    'enrolledAt',
    'enrollment',
    'occurredAt',
    'status',
    'trackedEntity',
    'updatedAt',
    'updatedAtClient',
  ],
  events: [
    'completedAt',
    'createdAt',
    'createdAtClient',
    'enrollment',
    'event',
    'occurredAt',
    'orgUnit',
    'program',
    'programStage',
    'scheduledAt',
    'status',
    'trackedEntity',
    'updatedAt',
    'updatedAtClient',
  ],
} as const;

function searchParams(req: Request): URLSearchParams {
  return new URL(req.originalUrl, 'http://simulator.invalid').searchParams;
}

function notFound(type: string, uid: string): BadRequestError & { status: number } {
  return Object.assign(new BadRequestError(`${type} with id ${uid} could not be found.`), { status: 404 });
}

/** How a read in a program whose owner is outside the user's capture scope is refused (Dhis2SimulatorOptions). */
export type OutOfScopeRead = 'not-found' | 'forbidden';

/** How lists and reads are answered: the envelope, and the test knobs of Dhis2SimulatorOptions. */
export interface Listing {
  envelope: PageEnvelope;
  tieOrder: TieOrder;
  maxPageSize: number | undefined;
  outOfScopeRead: OutOfScopeRead;
}

/**
 * GET /api/tracker/{trackedEntities,enrollments,events,relationships}: filters, order, paging, fields.
 * Tracked entities and events are scoped by the org units of the request's user (`userOf`, see
 * SimulatedUser); enrollments and relationships are not.
 */
export function exportRoutes(
  store: TrackerStore,
  listing: () => Listing,
  userOf: (res: Response) => SimulatedUser,
): Router {
  const router = Router();
  const envelope = () => listing().envelope;
  const pagingOf = (params: URLSearchParams) => parsePaging(params, listing().maxPageSize);
  const orderOf = (params: URLSearchParams, allowed: readonly string[], paging: ReturnType<typeof parsePaging>) =>
    comparator(params, allowed, listing().tieOrder, paging);
  const treeUnits = new Set(ORG_UNIT_TREE.map((ou) => ou.id));
  const known = () => (uid: string) => treeUnits.has(uid) || store.orgUnitsInData().has(uid);
  const fieldsOf = (params: URLSearchParams, key: keyof typeof DEFAULT_FIELDS) =>
    parseFields(param(params, 'fields') ?? DEFAULT_FIELDS[key]);
  const sortable = <T extends object>(item: T, uid: string, extra: Record<string, unknown> = {}) => ({
    uid,
    sequence: store.order(uid),
    get: (field: string): unknown => (field in extra ? extra[field] : Reflect.get(item, field)),
  });

  const knownProgram = (uid: string) => isMetadataProgram(uid) || store.programsInData().has(uid);
  /**
   * A list's `program` DHIS2 does not have: 400, as 2.40 and 2.41 answer it (dhis2-core
   * TrackedEntityOperationParamsMapper, EventOperationParamsMapper: BadRequestException "Program is specified
   * but does not exist: <uid>"), never an empty list.
   */
  const programOf = (params: URLSearchParams, res: Response): string | undefined => {
    const program = param(params, 'program');
    if (program && !knownProgram(program))
      throw new BadRequestError(`Program is specified but does not exist: ${program}`);
    if (program) refuseUnshared(program, res);
    return program;
  };
  /**
   * A `program` whose data is not shared with the request's user: 403 "User has no access to program: <uid>",
   * as 2.42+ answers a list and a read naming it (dhis2-core OperationsParamsValidator.validateProgramAccess:
   * ForbiddenException, which DefaultTrackedEntityService.getTrackedEntity lets through to a read).
   */
  const refuseUnshared = (program: string, res: Response): void => {
    if (!userOf(res).canReadProgram(program))
      throw Object.assign(new BadRequestError(`User has no access to program: ${program}`), { status: 403 });
  };

  /** The program owner org unit of `te` for `program` (the enrollment's, as the simulator keeps it), else its own. */
  const ownerOf = (te: TrackedEntity, program: string): string | undefined =>
    store.enrollmentsOf(te.trackedEntity ?? '').find((en) => en.program === program)?.orgUnit ?? te.orgUnit;
  /** An event's program owner: its enrollment's org unit (see ownerOf), else the event's own. */
  const eventOwner = (ev: Event): string | undefined =>
    (ev.enrollment ? store.enrollment(ev.enrollment)?.orgUnit : undefined) ?? ev.orgUnit;
  /** Refuses a single object whose owner is outside the user's capture scope, as OutOfScopeRead says. */
  const refuseOutOfScope = (res: Response, type: string, uid: string): void => {
    if (listing().outOfScopeRead !== 'forbidden') throw notFound(type, uid);
    dhis2Error(res, 403, 'Forbidden', 'OWNERSHIP_ACCESS_DENIED');
  };

  /**
   * Whatever org units are asked for, DHIS2 lists only records whose program owner the user may search in
   * (`orgUnitMode=CAPTURE`: capture in).
   */
  const userScopeOf = (params: URLSearchParams, res: Response) => {
    const mode = param(params, 'orgUnitMode', 'ouMode')?.toUpperCase();
    const user = userOf(res);
    return (owner: string | undefined) => (mode === 'CAPTURE' ? user.inCaptureScope(owner) : user.inSearchScope(owner));
  };

  /**
   * An org unit a tracked entity list names that the user may not search: DHIS2 2.41+ refuses the whole
   * list, 403 "Organisation unit is not part of the search scope: <uid>" (OperationsParamsValidator
   * .validateOrgUnits: ForbiddenException; a superuser is not checked), rather than listing the others.
   */
  const refuseOutsideSearchScope = (params: URLSearchParams, res: Response): void => {
    const user = userOf(res);
    const outside = listParam(params, 'orgUnits', 'orgUnit').find((uid) => !user.inSearchScope(uid));
    if (outside !== undefined)
      throw Object.assign(new BadRequestError(`Organisation unit is not part of the search scope: ${outside}`), {
        status: 403,
      });
  };

  /**
   * The tracked entity types a list without a `program` reaches: those of the programmes the user may read
   * (the metadata's, and those of the data, typed by their enrolled tracked entities). dhis2-core's
   * JdbcTrackedEntityStore (2.40–2.42, as read from its source) inner-joins such a list with the programmes
   * of the tracked entity's type among the user's accessible ones: one of a type no accessible programme
   * has is not listed, though a read by uid serves it. Ownership by each programme's access level
   * (PROTECTED/CLOSED: the owner in the capture scope) is not simulated.
   */
  const listableTypes = (res: Response): Set<string | undefined> => {
    const user = userOf(res);
    const types = new Set<string | undefined>();
    for (const { program, type } of metadataProgramTypes()) if (user.canReadProgram(program)) types.add(type);
    for (const en of store.allEnrollments())
      if (en.program && user.canReadProgram(en.program))
        types.add(store.trackedEntity(en.trackedEntity ?? '')?.trackedEntityType);
    return types;
  };

  router.get('/trackedEntities', (req: Request, res: Response) => {
    const params = searchParams(req);
    const paging = pagingOf(params);
    const program = programOf(params, res);
    const type = param(params, 'trackedEntityType');
    const uids = listParam(params, 'trackedEntities', 'trackedEntity');
    // Refused, never one of the two ignored: 2.40 and 2.41 throw IllegalQueryException, answered 409 Conflict
    // (dhis2-core DefaultTrackedEntityService.validate); 2.42+ check it in TrackedEntityRequestParamsMapper
    // and answer 400 with the same message.
    if (program && type)
      throw Object.assign(new BadRequestError('Program and tracked entity cannot be specified simultaneously'), {
        status: 409,
      });
    if (!program && !type && !uids.length)
      throw new BadRequestError('Either a program or tracked entity type must be specified');
    // Soft-deleted tracked entities too, with `deleted: true`; their enrollments were deleted with them, so
    // the program filter looks at deleted enrollments as well.
    const includeDeleted = boolParam(params, 'includeDeleted', false);
    const inScope = orgUnitScope(params, known(), ['orgUnits', 'orgUnit']);
    refuseOutsideSearchScope(params, res);
    const userScope = userScopeOf(params, res);
    const inWindow = updatedWindow(params);
    const stage = param(params, 'programStage');
    const status = param(params, 'enrollmentStatus', 'programStatus');
    const order = orderOf(params, ORDERABLE.trackedEntities, paging);
    const matches = attributeFilters(params);
    const deleted = { includeDeleted };
    const reachable = program ? undefined : listableTypes(res);
    const rows = store
      .allTrackedEntities(deleted)
      .flatMap((te) => {
        const uid = te.trackedEntity ?? '';
        const enrollment = program ? store.enrollmentsOf(uid, deleted).find((en) => en.program === program) : undefined;
        if (program && !enrollment) return [];
        if (type && te.trackedEntityType !== type) return [];
        if (reachable && !reachable.has(te.trackedEntityType)) return [];
        if (uids.length && !uids.includes(uid)) return [];
        if (!matches(te.attributes ?? [])) return [];
        if (status && enrollment?.status !== status) return [];
        if (
          stage &&
          !store
            .enrollmentsOf(uid, deleted)
            .some((en) => store.eventsOf(en.enrollment ?? '', deleted).some((ev) => ev.programStage === stage))
        )
          return [];
        // With a program, DHIS2 scopes by the program owner org unit (here: the enrollment's), else by the registering one.
        const owner = enrollment?.orgUnit ?? te.orgUnit;
        if (!inScope(owner) || !userScope(owner) || !inWindow(te.updatedAt)) return [];
        return [{ te, key: sortable(te, uid, { enrolledAt: enrollment?.enrolledAt }) }];
      })
      .sort((a, b) => order(a.key, b.key));
    const fields = fieldsOf(params, 'trackedEntities');
    res.json(
      pageOf(rows, paging, 'trackedEntities', envelope(), ({ te }) =>
        applyFields(store.trackedEntityView(te, program, deleted), fields),
      ),
    );
  });

  router.get('/trackedEntities/:uid', (req: Request<{ uid: string }>, res: Response) => {
    const params = searchParams(req);
    const te = store.trackedEntity(req.params.uid);
    const program = param(params, 'program');
    // The programme is looked up first: 404 "Program with id … could not be found." (2.41
    // DefaultTrackedEntityService.getTrackedEntity: NotFoundException(Program.class, …)).
    if (program && !knownProgram(program)) throw notFound('Program', program);
    if (program) refuseUnshared(program, res);
    if (!te || te.deleted) throw notFound('TrackedEntity', req.params.uid);
    // Read in a program whose owner org unit is outside the user's capture scope: DHIS2 answers as if it
    // had no such tracked entity (dhis2-core #20280, DHIS2-19210), the same 404 as for a deleted one;
    // before that change, 403 OWNERSHIP_ACCESS_DENIED (DefaultTrackedEntityService, 2.41).
    if (program && !userOf(res).inCaptureScope(ownerOf(te, program)))
      return refuseOutOfScope(res, 'TrackedEntity', req.params.uid);
    res.json(applyFields(store.trackedEntityView(te, program), fieldsOf(params, 'trackedEntities')));
  });

  router.get('/enrollments', (req: Request, res: Response) => {
    const params = searchParams(req);
    const paging = pagingOf(params);
    const program = param(params, 'program');
    const trackedEntity = param(params, 'trackedEntity');
    const uids = listParam(params, 'enrollments', 'enrollment');
    const status = param(params, 'status', 'enrollmentStatus', 'programStatus');
    const inScope = orgUnitScope(params, known(), ['orgUnits', 'orgUnit']);
    const inWindow = updatedWindow(params);
    const order = orderOf(params, ORDERABLE.enrollments, paging);
    const rows = store
      .allEnrollments()
      .filter((en) => (!program || en.program === program) && (!trackedEntity || en.trackedEntity === trackedEntity))
      .filter((en) => (!uids.length || uids.includes(en.enrollment ?? '')) && (!status || en.status === status))
      .filter((en) => inScope(en.orgUnit) && inWindow(en.updatedAt))
      .map((en) => ({ en, key: sortable(en, en.enrollment ?? '') }))
      .sort((a, b) => order(a.key, b.key));
    const fields = fieldsOf(params, 'enrollments');
    res.json(
      pageOf(rows, paging, 'enrollments', envelope(), ({ en }) => applyFields(store.enrollmentView(en), fields)),
    );
  });

  router.get('/enrollments/:uid', (req: Request<{ uid: string }>, res: Response) => {
    const en = store.enrollment(req.params.uid);
    if (!en || en.deleted) throw notFound('Enrollment', req.params.uid);
    res.json(applyFields(store.enrollmentView(en), fieldsOf(searchParams(req), 'enrollments')));
  });

  router.get('/events', (req: Request, res: Response) => {
    const params = searchParams(req);
    const paging = pagingOf(params);
    const program = programOf(params, res);
    const stage = param(params, 'programStage');
    const trackedEntity = param(params, 'trackedEntity');
    const enrollments = listParam(params, 'enrollments', 'enrollment');
    const uids = listParam(params, 'events', 'event');
    const status = param(params, 'status');
    const inScope = orgUnitScope(params, known(), ['orgUnit', 'orgUnits']);
    const userScope = userScopeOf(params, res);
    const inWindow = updatedWindow(params);
    const order = orderOf(params, ORDERABLE.events, paging);
    const rows = store
      .allEvents()
      .filter((ev) => (!program || ev.program === program) && (!stage || ev.programStage === stage))
      .filter((ev) => (!trackedEntity || ev.trackedEntity === trackedEntity) && (!status || ev.status === status))
      .filter(
        (ev) =>
          (!enrollments.length || enrollments.includes(ev.enrollment ?? '')) &&
          (!uids.length || uids.includes(ev.event ?? '')),
      )
      .filter((ev) => inScope(ev.orgUnit) && userScope(eventOwner(ev)) && inWindow(ev.updatedAt))
      .map((ev) => ({ ev, key: sortable(ev, ev.event ?? '') }))
      .sort((a, b) => order(a.key, b.key));
    const fields = fieldsOf(params, 'events');
    res.json(pageOf(rows, paging, 'events', envelope(), ({ ev }) => applyFields(store.eventView(ev), fields)));
  });

  router.get('/events/:uid', (req: Request<{ uid: string }>, res: Response) => {
    const ev = store.event(req.params.uid);
    if (!ev || ev.deleted) throw notFound('Event', req.params.uid);
    // DHIS2 2.42+ reads a single event as a search in ACCESSIBLE mode, which leaves out an event whose
    // program owner is outside the user's scope: 404, like a missing one (DefaultTrackerEventService);
    // 2.41 answered 403 (DefaultEventService: trackerAccessManager.canRead, OWNERSHIP_ACCESS_DENIED).
    if (!userOf(res).inCaptureScope(eventOwner(ev))) return refuseOutOfScope(res, 'Event', req.params.uid);
    res.json(applyFields(store.eventView(ev), fieldsOf(searchParams(req), 'events')));
  });

  router.get('/relationships', (req: Request, res: Response) => {
    const params = searchParams(req);
    const paging = pagingOf(params);
    const given = (['trackedEntity', 'enrollment', 'event'] as const).flatMap((kind) => {
      const uid = param(params, kind);
      return uid ? [{ kind, uid }] : [];
    });
    const [target] = given;
    if (given.length !== 1 || !target)
      throw new BadRequestError('Exactly one of trackedEntity, enrollment or event must be specified.');
    const exists: Record<keyof RelationshipItem, (uid: string) => boolean> = {
      trackedEntity: (uid) => Boolean(store.trackedEntity(uid)),
      enrollment: (uid) => Boolean(store.enrollment(uid)),
      event: (uid) => Boolean(store.event(uid)),
    };
    if (!exists[target.kind](target.uid))
      throw notFound(
        target.kind === 'trackedEntity' ? 'TrackedEntity' : target.kind === 'enrollment' ? 'Enrollment' : 'Event',
        target.uid,
      );
    const fields = fieldsOf(params, 'relationships');
    const rows = store.relationshipsOf(target.kind, target.uid);
    res.json(
      pageOf(rows, paging, 'relationships', envelope(), (rel) => applyFields(store.relationshipView(rel), fields)),
    );
  });

  return router;
}
