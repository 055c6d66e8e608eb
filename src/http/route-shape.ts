// What a request line logs of the path: the route it took, never the record it named. A subscription
// notification's path ends in the resource's id (`PUT /fhir-subscription/<source>/Patient/<id>`), and some
// EMRs use the medical record number as that id (docs/deployment.md, Logs). A path that is none of the
// bridge's routes is the client's choice of words (an EMR posting to the wrong base URL sends its record
// URLs): only the bridge's own prefix of it is logged. So is a source the bridge does not have (a sender
// may put a record number where the source id goes) and a resource type FHIR R4 does not have. A route
// added without a shape here logs as unknown, which is safe: that is the direction this list may fall
// behind in.

import { FHIR_R4_RESOURCE_TYPES } from './fhir-resource-types.js';

const STATIC = new Set([
  '/',
  '/healthz',
  '/readyz',
  '/metrics',
  '/admin',
  '/admin/',
  '/admin/app.js',
  '/admin/app.css',
  '/admin/logout',
  '/admin/api/events',
  '/admin/api/summary',
  '/admin/api/replay-dead',
  '/admin/api/write-backs',
]);

/** The admin API's routes under a ledger row id, and what may follow it. */
const ROW_ROUTES: Record<string, ReadonlySet<string>> = {
  events: new Set(['', 'replay', 'dismiss', 'undismiss']),
  'write-backs': new Set(['', 'requeue']),
};

/** A segment shaped as a source id (see sources[].id): anything else is no subscription route at all. */
const SOURCE_ID = /^[A-Za-z0-9][\w.-]{0,63}$/;
/** A ledger row id: operational, shown with every log line about the row. */
const ROW_ID = /^\d{1,15}$/;

export interface RouteShapeOptions {
  /** Whether `id` is a configured source (the receiver's own answer); without it, none is. */
  isSource?: (id: string) => boolean;
}

/** `path` (no query string) as a request line may log it. */
export function routeShape(path: string, options: RouteShapeOptions = {}): string {
  if (STATIC.has(path)) return path;
  const [first, ...rest] = path.split('/').slice(1);
  if (first === 'fhir-subscription') {
    const [source, type, id, ...more] = rest;
    if (source !== undefined && SOURCE_ID.test(source) && more.length === 0) {
      const shown = options.isSource?.(source) ? source : '{source}';
      if (type === undefined) return `/fhir-subscription/${shown}`;
      if (id !== undefined && id !== '')
        return `/fhir-subscription/${shown}/${FHIR_R4_RESOURCE_TYPES.has(type) ? type : '{type}'}/{id}`;
    }
    return '/fhir-subscription/{unknown}';
  }
  if (first === 'admin') {
    const [api, collection, row, action = '', ...more] = rest;
    const actions = collection === undefined ? undefined : ROW_ROUTES[collection];
    if (api === 'api' && actions && row !== undefined && more.length === 0 && actions.has(action)) {
      const shaped = `/admin/api/${collection}/${ROW_ID.test(row) ? row : '{id}'}`;
      return action ? `${shaped}/${action}` : shaped;
    }
    return '/admin/{unknown}';
  }
  return '/{unknown}';
}
