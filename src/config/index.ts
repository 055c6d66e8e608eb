export { adminPageOn } from './admin.js';
export { ConfigError } from './errors.js';
export { MAX_TIMER_MS, MAX_TIMER_SECONDS } from './limits.js';
export {
  configFromObject,
  dhis2SinceProblem,
  type Env,
  isSinceValue,
  type LoadConfigOptions,
  loadConfig,
  type SecretFileReading,
  sinceHasZone,
} from './load.js';
export { packagePaths } from './paths.js';
export { storePathWarning } from './store-path.js';
export type * from './types.js';
