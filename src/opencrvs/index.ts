export { createOpenCrvsClient, type OpenCrvsClient, type OpenCrvsClientDeps } from './client.js';
export * from './errors.js';
export { readJwtClaims, readJwtExpiryMs } from './jwt.js';
export { type KnownLocation, type LocationMemory, LocationResolver } from './locations.js';
export { parseRetryAfter } from './retry-after.js';
export type * from './types.js';
