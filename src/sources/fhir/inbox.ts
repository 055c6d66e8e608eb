import type { InboxBacklog, LedgerInbox } from '../../ledger/index.js';
import type { ParsedNotification } from './notification.js';

/** A subscription notification stored before it was acknowledged (durable first, processed later). */
export interface InboxRow {
  id: number;
  sourceId: string;
  receivedAt: number;
  notification: ParsedNotification;
  attempts: number;
}

/** What the receiver writes and the processor reads. */
export interface InboxStore {
  /**
   * Stored before it returns: the sender is told "received" afterwards. Durable against power loss
   * unless `reconciled` (the source polls too), then against a crash of the process (see LedgerInbox).
   */
  add(sourceId: string, notification: ParsedNotification, receivedAt: number, reconciled?: boolean): number;
  due(limit: number, now: number): InboxRow[];
  done(id: number, now: number): void;
  /** Marks many rows processed at once (one transaction). */
  doneAll(ids: number[], now: number): void;
  retry(id: number, nextAttemptAt: number, error: string): void;
  /** Stops retrying a row; the poller reconciles what it would have delivered. */
  abandon(id: number, error: string, now: number): void;
  /** Rows waiting and the bytes their stored notifications take (what the receiver bounds). */
  backlog(): InboxBacklog;
  /** Deletes processed rows older than `before`, at most `limit`; returns how many. */
  prune(before: number, limit: number): number;
}

const KINDS = new Set(['ping', 'handshake', 'heartbeat', 'event']);

/** Rows were written by this module, but the file may have been edited or written by another version. */
function asNotification(body: unknown): ParsedNotification | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { kind, refs } = body as { kind?: unknown; refs?: unknown };
  if (typeof kind !== 'string' || !KINDS.has(kind)) return undefined;
  if (kind === 'event' && !(Array.isArray(refs) && refs.every((r) => typeof r === 'string'))) return undefined;
  return body as ParsedNotification;
}

/** The FHIR sources' view of the ledger's inbox table. */
export function fhirInbox(store: LedgerInbox): InboxStore {
  return {
    add: (sourceId, notification, receivedAt, reconciled) =>
      store.add(sourceId, notification, receivedAt, { reconciled }),
    due(limit, now) {
      const rows: InboxRow[] = [];
      for (const row of store.due(limit, now)) {
        const notification = asNotification(row.body);
        if (notification) rows.push({ ...row, notification });
        else store.abandon(row.id, 'unreadable stored notification', now);
      }
      return rows;
    },
    done: store.done,
    doneAll: store.doneAll,
    retry: store.retry,
    abandon: store.abandon,
    backlog: store.backlog,
    prune: store.prune,
  };
}
