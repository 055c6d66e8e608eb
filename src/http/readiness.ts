// What /readyz answers, apart from its route (ops-routes.ts): the bridge runs the checks without a
// listener too (sync --once, replay), which must not load express for them.

export interface ReadinessCheck {
  name: string;
  run: () => Promise<string | undefined> | string | undefined;
  /** Its reason is shown as the check's detail and never fails readiness (something to know, not to fix now). */
  note?: boolean;
}

export interface OpsTarget {
  /** Readiness checks: each resolves to undefined when fine, or a reason (no personal data). */
  readinessChecks(): ReadinessCheck[];
  renderMetrics(): Promise<{ contentType: string; body: string }>;
  startedAt: number;
  /** What only a restart mends (the ledger file deleted under the process), else undefined. */
  livenessProblem(): string | undefined;
}

const CHECK_TIMEOUT_MS = 5_000;

async function runCheck(check: ReadinessCheck): Promise<{ ok: boolean; detail?: string }> {
  try {
    const problem = await Promise.race([
      Promise.resolve(check.run()),
      new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), CHECK_TIMEOUT_MS).unref()),
    ]);
    return problem === undefined ? { ok: true } : { ok: false, detail: problem };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : 'failed' };
  }
}

/** What /readyz answers: every check's result by name, and the failing ones (a note never fails). */
export async function readiness(
  checks: ReadinessCheck[],
): Promise<{ failed: string[]; checks: Record<string, { ok: boolean; detail?: string }> }> {
  const results = await Promise.all(
    checks.map(async (check) => {
      const result = await runCheck(check);
      return check.note ? { ...result, ok: true } : result;
    }),
  );
  const byName = Object.fromEntries(checks.map((check, i) => [check.name, results[i] ?? { ok: false }]));
  return { failed: checks.filter((_, i) => !results[i]?.ok).map((check) => check.name), checks: byName };
}
