// What the admin routes need from the running bridge, kept as a narrow interface so the routes know
// nothing about how sources, the worker or remapping are built (the composition root implements it).
import type { Ledger } from '../../ledger/index.js';

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
}

export interface AdminTarget {
  ledger: Ledger;
  held(): { reason: string; since: number } | undefined;
  sourceStatuses(): SourceStatusView[];
  /** Puts dead rows back in the queue (re-mapping from the source where it can) and wakes the worker. */
  replay(ids: number[] | 'dead'): Promise<{ requeued: number[]; skipped: Array<{ id: number; reason: string }> }>;
}

export interface AdminSettingsView {
  /** Without a token the admin routes are disabled (404), never open. */
  token?: string;
  /** Shows the declaration and the submitted values OpenCRVS echoes in its 400 messages. */
  showPersonalData: boolean;
}
