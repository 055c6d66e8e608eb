// What the admin routes need from the running bridge, kept as a narrow interface so the routes know
// nothing about how sources, the worker or remapping are built (the composition root implements it).
import type { Ledger } from '../../ledger/index.js';
import type { IdentifierLookup } from '../../sources/identifier-lookup.js';

export interface SubscriptionStatusView {
  lastNotificationAt?: number;
  lastEventNumber?: number;
  gaps: number;
  lastGapAt?: number;
  lastGapReason?: string;
  catchUps: number;
}

export interface SourceStatusView {
  id: string;
  kind: string;
  /** Per resource type: the server-clock watermark of the last completed poll (ISO text). */
  watermarks: Record<string, string | undefined>;
  lastPollStartedAt?: number;
  lastPollFinishedAt?: number;
  lastError?: string;
  consecutiveFailures: number;
  subscription?: SubscriptionStatusView;
  /** The last time the source's clock was found behind a stored watermark, which was moved back. */
  clockBehind?: ClockBehindView;
}

/** Times as the source writes them (no personal data); `at` in this machine's epoch ms. */
export interface ClockBehindView {
  at: number;
  resourceType: string;
  watermark: string;
  serverTime: string;
  movedTo: string;
}

/** `pending`: not done yet (due, running, or waiting for its backoff); the others are final outcomes. */
export type WriteBackStateName = 'pending' | 'written' | 'already' | 'abandoned';

/** One write-back job as stored (the write_backs table); no personal data, errors already bounded. */
export interface WriteBackJobRecord {
  rowId: number;
  sourceId: string;
  trackingId: string;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  /** What a written job's write left beside the id (migration 029). */
  note?: string | null;
  outcome: 'written' | 'already' | 'abandoned' | null;
  doneAt: number | null;
  createdAt: number;
  updatedAt: number;
  /** The tracking ids the job had before it restarted for this one (migration 027), oldest first. */
  earlierTrackingIds?: readonly string[];
  /** Where the source's write-back puts the id (writeBackTargetText); null when it has none configured now. */
  target?: string | null;
}

export interface WriteBackSearch {
  states?: WriteBackStateName[];
  sourceId?: string;
  limit: number;
  offset: number;
}

export interface WriteBackQueueView {
  /** Sources with write-back configured now. */
  sourceIds(): string[];
  /** Newest ledger row first. */
  search(filter: WriteBackSearch): WriteBackJobRecord[];
  get(rowId: number): WriteBackJobRecord | undefined;
  counts(): Array<{ sourceId: string; state: WriteBackStateName; count: number }>;
  /** Puts an abandoned job back in the queue (attempts reset, error kept); false when it is not abandoned. */
  requeue(rowId: number): boolean;
}

export interface AdminTarget {
  ledger: Ledger;
  /** The ledger's counts by state and event type, paced on a large ledger (observability/paced.ts). */
  counts(): ReturnType<Ledger['counts']>;
  /** The write-back queue; absent when no source writes tracking ids back. */
  writeBacks?: WriteBackQueueView;
  held(): { reason: string; since: number } | undefined;
  sourceStatuses(): SourceStatusView[];
  /**
   * The requests that find a record's id at the configured sources by an identifier `value` (the page's Find
   * help, as `ledger --find` says them); absent: the page gives the general form.
   */
  identifierLookup?(value: string): IdentifierLookup;
  /** Puts dead rows back in the queue (re-mapping from the source where it can) and wakes the worker. */
  replay(ids: number[] | 'dead'): Promise<{ requeued: number[]; skipped: Array<{ id: number; reason: string }> }>;
}

export interface AdminSettingsView {
  /** Without a token the admin routes are disabled (404), never open. */
  token?: string;
  /** Shows the declaration and the submitted values OpenCRVS echoes in its 400 messages. */
  showPersonalData: boolean;
  /** `admin.host`: served as a host name too (on the listener's port), beside the loopback names. */
  host?: string;
  /** `admin.allowedHosts`: further host names served (`name` or `name:port`), e.g. a proxy's. */
  allowedHosts?: readonly string[];
}
