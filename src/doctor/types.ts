// What one doctor check reports. Details are short, operator-facing, and never carry secrets or
// personal data: they name key paths, hosts, resource types, location references and HTTP statuses.

/** `warn` does not fail the run: something worth knowing that does not stop delivery. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/**
 * The command the checked host runs (doctor --for): `serve` (the default) reads every secret; `sync` only
 * those it presents, which is what a host that runs `sync --once` alone (a CronJob) is given: the admin
 * token and the subscriptions' secrets belong to a listener it never opens, and no notification reaches it.
 */
export type DoctorCommand = 'serve' | 'sync';

export interface CheckResult {
  /** e.g. `config`, `store`, `source demo-emr`, `opencrvs token`, `routing`. */
  name: string;
  status: CheckStatus;
  detail: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

export const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail });
export const fail = (name: string, detail: string): CheckResult => ({ name, status: 'fail', detail });
export const warn = (name: string, detail: string): CheckResult => ({ name, status: 'warn', detail });
export const skip = (name: string, detail: string): CheckResult => ({ name, status: 'skip', detail });
