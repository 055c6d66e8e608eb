#!/usr/bin/env node
// Entry point of the `opencrvs-bridge` command: runs the compiled CLI (built by `npm ci` / `npm run build`).
import { errorLine, main } from '../dist/cli.js';

// `opencrvs-bridge ledger | head` closes the pipe early: that ends the output, it is no crash.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(errorLine(err));
    process.exitCode = 1;
  },
);
