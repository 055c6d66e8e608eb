// What escapes every handler. Node's own report prints the error's message as it is, and a message can
// carry a token or a search URL with a name in it: here it is scrubbed like a log line, then the
// process ends with 1, as Node's would. The ledger is durable at every step, so a restart loses nothing.
import { errorMessage } from './inner-errors.js';
import { scrubString } from './redact.js';

/** The error's message, scrubbed: what a command that failed prints. */
export function errorLine(err: unknown): string {
  return scrubString(err instanceof Error ? errorMessage(err) : String(err));
}

/** One scrubbed line (name and message), then the stack's frames (code locations, never data). */
export function crashReport(err: unknown): string {
  const head = err instanceof Error ? `${err.name}: ${errorMessage(err)}` : `non-Error thrown: ${String(err)}`;
  const frames = err instanceof Error && err.stack ? err.stack.split('\n').filter((l) => /^\s+at /.test(l)) : [];
  return [`opencrvs-bridge: unexpected error: ${scrubString(head)}`, ...frames.map(scrubString)].join('\n');
}

let installed = false;

/** Reports an uncaught exception or unhandled rejection through crashReport, then exits 1. */
export function installCrashHandlers(): void {
  if (installed) return;
  installed = true;
  const crash = (err: unknown) => {
    process.stderr.write(`${crashReport(err)}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}
