#!/usr/bin/env node
// Entry point of the `opencrvs-bridge` command: runs the compiled CLI (built by `npm ci` / `npm run build`).
import { main } from '../dist/cli.js';

main(process.argv).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
