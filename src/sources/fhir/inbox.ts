import type { ParsedNotification } from './notification.js';

/** A subscription notification stored before it was acknowledged (durable first, processed later). */
export interface InboxRow {
  id: number;
  sourceId: string;
  receivedAt: number;
  notification: ParsedNotification;
  attempts: number;
}

/** Where the receiver writes and the processor reads; implemented on the ledger database. */
export interface InboxStore {
  /** Durable (synchronous=FULL) before it returns: the sender is told "received" afterwards. */
  add(sourceId: string, notification: ParsedNotification, receivedAt: number): number;
  due(limit: number, now: number): InboxRow[];
  done(id: number, now: number): void;
  retry(id: number, nextAttemptAt: number, error: string): void;
  /** Stops retrying a row; the poller reconciles what it would have delivered. */
  abandon(id: number, error: string, now: number): void;
  depth(): number;
}
