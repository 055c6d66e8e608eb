import { fileURLToPath } from 'node:url';

// The package root holds profiles/ and mappings/ next to src/ (dev) and dist/ (built): both sit
// one level below it, and this file is always two levels below the root.
const root = fileURLToPath(new URL('../../', import.meta.url));

export const packagePaths = {
  root,
  profiles: `${root}profiles/`,
  mappings: `${root}mappings/`,
  examples: `${root}examples/`,
} as const;
