// `replay` beside a running `serve`: the rows are replayed by that serve, through its admin API, rather
// than in this process. A replay evaluates each record again at its source and commits the result;
// evaluations of one record are ordered only within one process (sources/evaluation-order.ts), so a
// replay here could commit an older reading of a record over the newer one serve just recorded (the
// EMR user fixed the record, its notification reached serve, the operator ran `replay` meanwhile).
// Through serve's admin API the replay joins serve's own order. When that cannot be done (no admin
// token, serve on another host, its admin listener unreachable) the caller replays here and says so.
import type { BridgeConfig } from '../config/index.js';
import { localUrl } from '../http/local-url.js';
import { currentLeaseHolder } from '../ledger/process-lease.js';
import type { Ledger, ReplayResult } from '../ledger/types.js';

/** Per row asked: a replay reads the record at its source (bounded there too). */
const ROW_TIMEOUT_MS = 120_000;
/**
 * For `--dead`, one request: serve reads up to 10,000 records again (sources/replay.ts), which on a slow
 * source takes as long as the same replay here would. Past it, serve may still be at it.
 */
const DEAD_TIMEOUT_MS = 30 * 60_000;
const SUMMARY_TIMEOUT_MS = 5_000;

export type RemoteReplay =
  /** No live serve holds the ledger: replay here. */
  | { by: 'here' }
  /** A live serve holds it but could not be asked: replay here, and say why. */
  | { by: 'here'; beside: string; why: string }
  | { by: 'serve'; serve: string; result: ReplayResult };

export async function replayThroughServe(
  config: BridgeConfig,
  ledger: Pick<Ledger, 'getMeta' | 'ledgerId'>,
  ids: number[] | 'dead',
): Promise<RemoteReplay> {
  const holder = currentLeaseHolder(ledger);
  if (holder?.command !== 'serve') return { by: 'here' };
  const beside = holder.description;
  const { admin } = config;
  if (!admin.token) return { by: 'here', beside, why: 'its admin API is off (no admin.token)' };
  if (!holder.onThisHost) return { by: 'here', beside, why: 'it runs on another host' };
  if (admin.port === 0) return { by: 'here', beside, why: 'admin.port is 0, so its admin port is not known' };
  const base = localUrl(admin.host, admin.port, '/admin/api');
  const headers = { authorization: `Bearer ${admin.token}`, accept: 'application/json' };
  try {
    // The listener at admin.host:admin.port must be this ledger's: another bridge's (a second config on
    // this host) would replay rows of its own ledger under these ids.
    const summary = await fetch(`${base}/summary`, { headers, signal: AbortSignal.timeout(SUMMARY_TIMEOUT_MS) });
    if (!summary.ok) return { by: 'here', beside, why: `its admin API answered ${summary.status}` };
    const { ledgerId } = (await summary.json()) as { ledgerId?: unknown };
    if (!ledger.ledgerId || ledgerId !== ledger.ledgerId)
      return { by: 'here', beside, why: `the admin listener at ${admin.host}:${admin.port} serves another ledger` };
  } catch (err) {
    return { by: 'here', beside, why: `its admin API at ${admin.host}:${admin.port} did not answer (${failure(err)})` };
  }
  // From here on serve may have replayed rows: a failure is said, never followed by a replay here.
  try {
    return { by: 'serve', serve: beside, result: await askServe(base, headers, ids) };
  } catch (err) {
    if (err instanceof ServeRefused) throw err;
    throw new ServeRefused(
      `serve's admin API did not answer the replay (${failure(err)}); serve may still be replaying, so it is not done here too`,
    );
  }
}

function failure(err: unknown): string {
  return String((err as { cause?: { code?: unknown } }).cause?.code ?? (err as Error).name);
}

/** serve answered, but not with a replay result: not replayed there, and not to be replayed here either. */
export class ServeRefused extends Error {
  override readonly name = 'ServeRefused';
}

async function askServe(base: string, headers: Record<string, string>, ids: number[] | 'dead'): Promise<ReplayResult> {
  const post = (path: string, timeoutMs: number) =>
    fetch(`${base}${path}`, { method: 'POST', headers, signal: AbortSignal.timeout(timeoutMs) });
  if (ids === 'dead') {
    const response = await post('/replay-dead', DEAD_TIMEOUT_MS);
    if (!response.ok) throw new ServeRefused(`serve's admin API answered ${response.status} to replay-dead`);
    return (await response.json()) as ReplayResult;
  }
  const result: Required<Pick<ReplayResult, 'requeued' | 'skipped' | 'notes'>> = {
    requeued: [],
    skipped: [],
    notes: [],
  };
  for (const id of ids) {
    const response = await post(`/events/${id}/replay`, ROW_TIMEOUT_MS);
    const body = (await response.json().catch(() => ({}))) as Partial<ReplayResult> & { error?: unknown };
    // 404 (no such row) and 409 (not dead, or not replayed and why) are per-row answers, as here.
    if (response.status === 404 || response.status === 409)
      result.skipped.push({
        id,
        reason: String(body.error ?? response.status).replace(/^row \d+ (not replayed: )?/, ''),
      });
    else if (!response.ok) throw new ServeRefused(`serve's admin API answered ${response.status} for row ${id}`);
    else {
      result.requeued.push(...(body.requeued ?? []));
      result.skipped.push(...(body.skipped ?? []));
      result.notes.push(...(body.notes ?? []));
    }
  }
  return result;
}
