import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { type Logger, silentLogger } from '../../observability/logger.js';
import { DEFAULT_SANDBOX_AUTH, type Dhis2AuthOptions, type Dhis2ScopedUser, dhis2Error, requireAuth } from './auth.js';
import { CHILD_PROGRAMME, DEATH_PROGRAMME, ORG_UNIT_TREE, SIMULATED_DHIS2_VERSION } from './constants.js';
import { exportRoutes, type OutOfScopeRead } from './export-routes.js';
import { applyFields, FieldFilterError, parseFields } from './fields.js';
import { describeImportPayloadErrors, isTrackerImportPayload } from './import-schema.js';
import { importTracker } from './importer.js';
import { metadataRoutes } from './metadata-routes.js';
import { BadRequestError, type PageEnvelope, param, type TieOrder } from './query.js';
import { TrackerStore } from './store.js';
import { formatDhis2DateTime, MonotonicClock } from './time.js';
import type { ImportStrategy, TrackedEntity, WriteRecord } from './types.js';
import { SimulatedUser, type UserOrgUnits } from './user.js';

export interface Dhis2SimulatorOptions {
  /** 0 picks a free port (tests); the CLI uses DEFAULT_DHIS2_SIMULATOR_PORT. */
  port?: number;
  host?: string;
  /** Accepted credentials; defaults to DEFAULT_SANDBOX_AUTH (admin/district and a sandbox token). */
  auth?: Dhis2AuthOptions;
  /**
   * Further users, each with its own password and org units (tracked entity and event lists and reads, and
   * imports, are scoped by them as by the main user's): two sources of one server with different credentials.
   */
  users?: Dhis2ScopedUser[];
  seed?: TrackedEntity[];
  logger?: Logger;
  /** List envelope: 'trackedEntities' (2.41+, `pager` + named list; default) or 'instances' (2.40). */
  pageEnvelope?: PageEnvelope;
  /**
   * Test knob: how records equal on every `order` key are ordered: 'uid' (default, stable paging) or
   * 'offset', an order that depends on the page and page size asked, as PostgreSQL may give for ORDER BY
   * a non-unique column with LIMIT/OFFSET (see TieOrder).
   */
  tieOrder?: TieOrder;
  /** Test knob: serve pages asked larger than this at this size (the pager says so) instead of refusing them. */
  maxPageSize?: number;
  /**
   * How a tracked entity read in a program whose owner org unit is outside the user's capture scope is
   * refused: 'not-found' (default: 404, as DHIS2 since dhis2-core #20280, DHIS2-19210) or 'forbidden' (403
   * `OWNERSHIP_ACCESS_DENIED`, as DHIS2 before it).
   */
  outOfScopeRead?: OutOfScopeRead;
  /** Server clock in epoch ms (tests set it behind, as a DHIS2 moved to a server whose clock is). */
  clock?: () => number;
}

export interface Dhis2Simulator {
  /** http://127.0.0.1:<port>; the API is under /api. */
  baseUrl: string;
  port: number;
  seed(entities: TrackedEntity[]): void;
  writes(): WriteRecord[];
  trackedEntity(uid: string): TrackedEntity | undefined;
  /**
   * Narrows the user's org units (capture; search too if given, else DHIS2 searches in the capture
   * ones); `undefined` restores the superuser. What `POST /_sandbox/user` does (see SimulatedUser).
   */
  restrictUser(orgUnits: Partial<UserOrgUnits> | undefined): void;
  close(): Promise<void>;
}

const IMPORT_STRATEGIES: readonly ImportStrategy[] = ['CREATE', 'UPDATE', 'CREATE_AND_UPDATE', 'DELETE'];
/** Bounded so a long demo run cannot grow memory without limit. */
const MAX_WRITE_RECORDS = 10_000;

/** Seeds nested tracked entities, keeping their timestamps; throws with DHIS2's messages if any is invalid. */
function seedStore(store: TrackerStore, entities: TrackedEntity[]): void {
  const payload = { trackedEntities: structuredClone(entities) };
  if (!isTrackerImportPayload(payload))
    throw new BadRequestError(`DHIS2 simulator seed is malformed: ${describeImportPayloadErrors()}`);
  const { report } = importTracker(store, payload, { importStrategy: 'CREATE_AND_UPDATE', keepTimestamps: true });
  if (report.status === 'ERROR') {
    const first = report.validationReport.errorReports.slice(0, 3).map((e) => `${e.errorCode} ${e.message}`);
    throw new BadRequestError(`DHIS2 simulator seed rejected: ${first.join('; ')}`);
  }
}

export async function startDhis2Simulator(options: Dhis2SimulatorOptions = {}): Promise<Dhis2Simulator> {
  const logger = (options.logger ?? silentLogger).child({ component: 'dhis2-simulator' });
  const auth = options.auth ?? DEFAULT_SANDBOX_AUTH;
  const envelope = options.pageEnvelope ?? 'trackedEntities';
  const clock = options.clock ?? Date.now;
  const store = new TrackerStore(new MonotonicClock(clock));
  const writes: WriteRecord[] = [];
  const user = new SimulatedUser();
  const treeUnits = new Set(ORG_UNIT_TREE.map((ou) => ou.id));
  const knownOrgUnit = (uid: string) => treeUnits.has(uid) || store.orgUnitsInData().has(uid);
  const scopedUsers = options.users ?? [];
  const others = new Map(
    scopedUsers.map((scoped) => {
      const simulated = new SimulatedUser();
      simulated.restrict({ organisationUnits: scoped.organisationUnits }, knownOrgUnit);
      simulated.sharePrograms(scoped.programs);
      return [scoped.username, simulated] as const;
    }),
  );
  /** The user a request authenticated as (requireAuth): a scoped user, else the main one. */
  const userOf = (res: Response): SimulatedUser => others.get(String(res.locals.username)) ?? user;
  if (options.seed) seedStore(store, options.seed);

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '20mb' }));
  app.use((req, _res, next) => {
    logger.debug({ method: req.method, path: req.path }, 'dhis2 simulator request');
    next();
  });

  // Test control API (no auth: it is how tests and the demo arrange the world).
  app.post('/_sandbox/reset', (_req, res) => {
    store.reset();
    writes.length = 0;
    user.restrict(undefined, knownOrgUnit);
    res.status(204).end();
  });
  // `{ organisationUnits: [...], teiSearchOrganisationUnits?: [...] }` narrows the user's org units; `{}`
  // (no organisationUnits) restores the superuser.
  app.post('/_sandbox/user', (req, res) => {
    const body: unknown = req.body;
    const uids = (value: unknown): string[] | undefined => {
      if (value === undefined || value === null) return undefined;
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
        throw new BadRequestError('organisationUnits and teiSearchOrganisationUnits must be lists of org unit uids');
      return value;
    };
    const given = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const capture = uids(given.organisationUnits);
    const search = uids(given.teiSearchOrganisationUnits);
    user.restrict(
      capture === undefined ? undefined : { organisationUnits: capture, teiSearchOrganisationUnits: search },
      knownOrgUnit,
    );
    res.json(user.orgUnits());
  });
  app.post('/_sandbox/seed', (req, res) => {
    const body: unknown = req.body;
    // An array of nested tracked entities; a `{ trackedEntities: [...] }` import body is accepted too.
    const payload = Array.isArray(body) ? { trackedEntities: body } : body;
    if (!isTrackerImportPayload(payload)) throw new BadRequestError(`Invalid seed: ${describeImportPayloadErrors()}`);
    const entities = payload.trackedEntities ?? [];
    seedStore(store, entities);
    res.json({ status: 'OK', seeded: entities.length });
  });
  app.get('/_sandbox/writes', (_req, res) => {
    res.json(writes);
  });

  const api = express.Router();
  api.use(requireAuth(auth, scopedUsers));
  api.get('/system/info', (req, res) => {
    res.json({
      contextPath: `${req.protocol}://${req.get('host') ?? ''}`,
      version: SIMULATED_DHIS2_VERSION,
      revision: 'sandbox',
      serverDate: formatDhis2DateTime(clock()),
      serverTimeZoneId: 'Etc/UTC',
      serverTimeZoneDisplayName: 'Coordinated Universal Time',
      calendar: 'iso8601',
      dateFormat: 'yyyy-mm-dd',
      systemName: 'DHIS2 simulator (opencrvs-bridge sandbox)',
      systemId: 'opencrvs-bridge-dhis2-simulator',
    });
  });
  api.use(metadataRoutes(knownOrgUnit));
  // As DHIS2 2.40–2.42 (MeDto): `authorities` (`ALL` only for the superuser: a narrowed user is held to its
  // scopes), `organisationUnits` (capture scope) and `teiSearchOrganisationUnits` (search scope) as `{ id }`
  // references; `fields` selects from it.
  api.get('/me', (req, res) => {
    const username = String(res.locals.username ?? 'admin');
    const me = userOf(res);
    const body = {
      id: 'SbxUserAdm1',
      username,
      firstName: 'Sandbox',
      surname: 'Administrator',
      displayName: 'Sandbox Administrator',
      authorities: me.isSuperuser() ? ['ALL'] : ['M_dhis-web-capture'],
      organisationUnits: me.orgUnits().organisationUnits.map((id) => ({ id })),
      teiSearchOrganisationUnits: me.orgUnits().teiSearchOrganisationUnits.map((id) => ({ id })),
      programs: [CHILD_PROGRAMME, DEATH_PROGRAMME],
    };
    const fields = param(new URL(req.originalUrl, 'http://simulator.invalid').searchParams, 'fields');
    res.json(fields ? applyFields(body, parseFields(fields)) : body);
  });
  const listing = {
    envelope,
    tieOrder: options.tieOrder ?? 'uid',
    maxPageSize: options.maxPageSize,
    outOfScopeRead: options.outOfScopeRead ?? 'not-found',
  };
  api.use(
    '/tracker',
    exportRoutes(store, () => listing, userOf),
  );
  api.post('/tracker', (req, res) => {
    const params = new URL(req.originalUrl, 'http://simulator.invalid').searchParams;
    const strategy = (param(params, 'importStrategy') ?? 'CREATE_AND_UPDATE').toUpperCase();
    const importStrategy = IMPORT_STRATEGIES.find((s) => s === strategy);
    if (!importStrategy) throw new BadRequestError(`Value '${strategy}' is not valid for parameter importStrategy.`);
    if ((param(params, 'async') ?? 'true').toLowerCase() !== 'false') {
      // Async imports answer with a job reference the client must poll; the simulator only does sync.
      throw new BadRequestError('The DHIS2 simulator supports only synchronous imports: add async=false.');
    }
    const body: unknown = req.body;
    if (!isTrackerImportPayload(body))
      throw new BadRequestError(`Invalid tracker payload: ${describeImportPayloadErrors()}`);
    const payload = structuredClone(body);
    const validateOnly = (param(params, 'importMode') ?? '').toUpperCase() === 'VALIDATE';
    const importer = { username: String(res.locals.username ?? 'admin'), orgUnits: userOf(res) };
    const { httpStatus, report } = importTracker(store, body, { importStrategy, validateOnly, importer });
    writes.push({ receivedAt: formatDhis2DateTime(Date.now()), importStrategy, payload, httpStatus, report });
    if (writes.length > MAX_WRITE_RECORDS) writes.shift();
    logger.info({ importStrategy, status: report.status, stats: report.stats }, 'dhis2 simulator import');
    res.status(httpStatus).json(report);
  });
  api.use((_req, res) => dhis2Error(res, 404, 'Not Found', 'No endpoint here in the DHIS2 simulator.'));
  app.use('/api', api);

  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status =
      typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 500;
    if (err instanceof BadRequestError || err instanceof FieldFilterError) {
      const named: Record<number, string> = { 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict' };
      const httpStatus = named[status];
      if (httpStatus) return dhis2Error(res, status, httpStatus, err.message);
      return dhis2Error(res, 400, 'Bad Request', err.message);
    }
    if (status >= 400 && status < 500)
      return dhis2Error(res, status, 'Bad Request', 'The request body could not be read as JSON.');
    logger.error({ err }, 'dhis2 simulator failure');
    dhis2Error(res, 500, 'Internal Server Error', 'The DHIS2 simulator failed to handle the request.');
  });

  const host = options.host ?? '127.0.0.1';
  const server: Server = await new Promise((resolve, reject) => {
    const listening = app.listen(options.port ?? 0, host, (error?: Error) =>
      error ? reject(error) : resolve(listening),
    );
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
  logger.info({ port }, 'dhis2 simulator listening');

  return {
    baseUrl,
    port,
    seed: (entities) => seedStore(store, entities),
    writes: () => structuredClone(writes),
    trackedEntity: (uid) => {
      const te = store.trackedEntity(uid);
      // What is stored (tests inspect it), not what an export without a programme would list.
      return te && !te.deleted
        ? structuredClone(store.trackedEntityView(te, undefined, { allAttributes: true }))
        : undefined;
    },
    restrictUser: (orgUnits) => user.restrict(orgUnits, knownOrgUnit),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
