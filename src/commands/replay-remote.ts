// `replay` beside a running `serve`: the rows are replayed by that serve, through its admin API, rather
// than in this process. A replay evaluates each record again at its source and commits the result;
// evaluations of one record are ordered only within one process (sources/evaluation-order.ts), so a
// replay here could commit an older reading of a record over the newer one serve just recorded (the
// EMR user fixed the record, its notification reached serve, the operator ran `replay` meanwhile).
// Through serve's admin API the replay joins serve's own order. When that cannot be done (no admin
// token, serve on another host, its admin listener unreachable) the caller replays here and says so;
// when that API answers but refuses the caller (a wrong token: 401, 403, 421, 429) nothing is replayed.
import type { BridgeConfig } from '../config/index.js';
import { localUrl } from '../http/local-url.js';
import { currentLeaseHolder } from '../ledger/process-lease.js';
import type { Ledger, ReplayResult } from '../ledger/types.js';
import { ResponseTooLargeError, readBodyCapped } from '../sources/shared/read-body.js';
import { callSignal } from '../util/call-signal.js';

/** Per row asked: a replay reads the record at its source (bounded there too). */
const ROW_TIMEOUT_MS = 120_000;
/**
 * For `--dead`, one request: serve reads up to 10,000 records again (sources/replay.ts), which on a slow
 * source takes as long as the same replay here would. Past it, serve may still be at it.
 */
const DEAD_TIMEOUT_MS = 30 * 60_000;
const SUMMARY_TIMEOUT_MS = 5_000;
/**
 * The largest answer read from the admin listener. A summary is a few kilobytes; a replay result lists at
 * most 10,000 rows (ids and a reason each): a few megabytes. Whatever else listens at admin.host:admin.port
 * may send an endless body, which Node 20's fetch() neither cuts off at its signal nor bounds (read-body.ts).
 */
const SUMMARY_MAX_BYTES = 1_048_576;
const RESULT_MAX_BYTES = 32 * 1_048_576;

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
  // The demo serves its ledger as serve does, admin API included (its printed configuration has the token).
  if (holder?.command !== 'serve' && holder?.command !== 'demo') return { by: 'here' };
  const beside = holder.description;
  const { admin } = config;
  if (!admin.token) return { by: 'here', beside, why: 'its admin API is off (no admin.token)' };
  if (!holder.onThisHost) return { by: 'here', beside, why: 'it runs on another host' };
  if (admin.port === 0) return { by: 'here', beside, why: 'admin.port is 0, so its admin port is not known' };
  const base = localUrl(admin.host, admin.port, '/admin/api');
  const headers = { authorization: `Bearer ${admin.token}`, accept: 'application/json' };
  let refused: string | undefined;
  try {
    // The listener at admin.host:admin.port must be this ledger's: another bridge's (a second config on
    // this host) would replay rows of its own ledger under these ids.
    const summary = await ask(`${base}/summary`, { headers }, SUMMARY_TIMEOUT_MS, SUMMARY_MAX_BYTES, (response) =>
      refusal(response, `${admin.host}:${admin.port}`),
    );
    refused = summary.refused;
    if (!refused && !summary.ok) return { by: 'here', beside, why: `its admin API answered ${summary.status}` };
    if (!refused) {
      const { ledgerId } = (JSON.parse(summary.text) ?? {}) as { ledgerId?: unknown };
      if (!ledger.ledgerId || ledgerId !== ledger.ledgerId)
        return { by: 'here', beside, why: `the admin listener at ${admin.host}:${admin.port} serves another ledger` };
    }
  } catch (err) {
    return { by: 'here', beside, why: `its admin API at ${admin.host}:${admin.port} did not answer (${failure(err)})` };
  }
  // serve's admin API is on and answered, but refused this caller: replaying here instead is what the
  // order of evaluations forbids, and a wrong token must not quietly take that path.
  if (refused)
    throw new ServeRefused(
      `${refused}; nothing replayed, by serve or in this process (which would not be ordered against serve: docs/deployment.md §1)`,
    );
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

/**
 * What serve's admin listener says by refusing this caller (the token of this configuration is not
 * serve's, the listener refuses it for now, or it does not serve the host name asked), or undefined for
 * any other answer. A listener without a token answers 404 (http/admin): "its admin API is off", and the
 * replay is done here as without a token of our own.
 */
function refusal(response: Response, listener: string): string | undefined {
  const at = `serve's admin API at ${listener}`;
  switch (response.status) {
    case 401:
      return `${at} refused admin.token of this configuration (HTTP 401): it is not the token serve runs with (use serve's configuration, or the token file it reads)`;
    case 403:
      return `${at} refused this request (HTTP 403)`;
    case 421:
      return `${at} does not answer to the host name asked (HTTP 421: see admin.allowedHosts)`;
    case 429: {
      const wait = response.headers.get('retry-after');
      return `${at} refuses tokens from this address for now, after too many wrong ones (HTTP 429${wait ? `, retry after ${wait} s` : ''}); check admin.token`;
    }
    default:
      return undefined;
  }
}

function failure(err: unknown): string {
  if (err instanceof ResponseTooLargeError) return `${err.message}, not read`;
  return String((err as { cause?: { code?: unknown } }).cause?.code ?? (err as Error).name);
}

interface Answer {
  status: number;
  ok: boolean;
  /** What `refuses` said of the answer; its body is then left unread. */
  refused?: string;
  text: string;
}

/**
 * One request to the admin listener and its whole answer, within `timeoutMs` and `maxBytes` both: the body
 * is read under the same signal, so neither a listener that answers slowly nor one that answers without end
 * holds the command or grows its memory.
 */
async function ask(
  url: string,
  init: { method?: 'POST'; headers: Record<string, string> },
  timeoutMs: number,
  maxBytes: number,
  refuses: (response: Response) => string | undefined = () => undefined,
): Promise<Answer> {
  const call = callSignal(timeoutMs);
  try {
    const response = await fetch(url, { ...init, redirect: 'error', signal: call.signal });
    const refused = refuses(response);
    if (refused) {
      await response.body?.cancel().catch(() => undefined);
      return { status: response.status, ok: response.ok, refused, text: '' };
    }
    const text = await readBodyCapped(response, maxBytes, call.signal);
    return { status: response.status, ok: response.ok, text };
  } finally {
    call.done();
  }
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/** serve answered, but not with a replay result: not replayed there, and not to be replayed here either. */
export class ServeRefused extends Error {
  override readonly name = 'ServeRefused';
}

async function askServe(base: string, headers: Record<string, string>, ids: number[] | 'dead'): Promise<ReplayResult> {
  const post = (path: string, timeoutMs: number) =>
    ask(`${base}${path}`, { method: 'POST', headers }, timeoutMs, RESULT_MAX_BYTES);
  if (ids === 'dead') {
    const response = await post('/replay-dead', DEAD_TIMEOUT_MS);
    if (!response.ok) throw new ServeRefused(`serve's admin API answered ${response.status} to replay-dead`);
    return JSON.parse(response.text) as ReplayResult;
  }
  const result: Required<Pick<ReplayResult, 'requeued' | 'skipped' | 'notes'>> = {
    requeued: [],
    skipped: [],
    notes: [],
  };
  for (const id of ids) {
    const response = await post(`/events/${id}/replay`, ROW_TIMEOUT_MS);
    const body = parsed(response.text) as Partial<ReplayResult> & { error?: unknown };
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
