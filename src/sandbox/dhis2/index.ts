export type { Dhis2AuthOptions } from './auth.js';
export { DEFAULT_SANDBOX_AUTH, type Dhis2ScopedUser } from './auth.js';
export * from './constants.js';
export { buildDemoChildProgramme, type DemoChildProgrammeOptions } from './demo.js';
export type { PageEnvelope } from './query.js';
export { type Dhis2Simulator, type Dhis2SimulatorOptions, startDhis2Simulator } from './server.js';
export type * from './types.js';
export type { UserOrgUnits } from './user.js';
