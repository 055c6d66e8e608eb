// The ledger/outbox: one SQLite row per source event, the same row the delivery worker claims.

export { LedgerInUseError, LedgerOpenError } from './db.js';
export { canonicalJson, hashPayload } from './hash.js';
export { heldSince } from './hold-text.js';
export { DECLARATION_STEPS } from './in-doubt.js';
export type { InboxBacklog, LedgerInbox, StoredNotification } from './inbox.js';
export { openLedger, PURGE_CHUNK_ROWS } from './ledger.js';
export type { KeptLocation, LedgerLocationAnswers } from './location-answers.js';
export { ledgerOwnClients } from './opencrvs-clients.js';
export { DEFAULT_LIST_LIMIT } from './queries.js';
export type { LedgerSlowRecords, SlowRecordStrikes } from './slow-records.js';
export { type UnaccountedSource, unaccountedSources, unaccountedSourcesMessage } from './source-check.js';
export {
  type LedgerSources,
  type SourceHistory,
  SourceIdError,
  type SourceRenameResult,
  sourceMetaKeys,
} from './sources.js';
export {
  notifyTransactionId,
  TRANSACTION_NAMESPACE,
  type TransactionIds,
  transactionIdsFor,
} from './transaction-ids.js';
export {
  type AttemptOutcome,
  type AttemptRow,
  checkDismissReason,
  countedAttempts,
  DISMISSED_PREFIX,
  type DismissResult,
  type DuePendingCheck,
  dismissalNote,
  HOLD_META_KEY,
  type HoldState,
  isDismissed,
  LEDGER_STATES,
  type Ledger,
  type LedgerError,
  type LedgerErrorClassification,
  type LedgerOptions,
  type LedgerPayload,
  type LedgerRow,
  type LedgerState,
  type ListFilter,
  MAX_DISMISS_REASON_LENGTH,
  notReplayable,
  type PendingCheckInput,
  type PendingCheckResult,
  type RecordChange,
  type RecordEventInput,
  type Recorded,
  type RecordedEvent,
  type RecordInvalidInput,
  type RecordSkippedInput,
  type ReplayResult,
  type SettleInput,
  type Settlement,
  type UndismissResult,
} from './types.js';
export type { FreeSpace, WriteFailure } from './write-health.js';
export { freeSpaceAt, freeSpaceNeeded, isCorruptCode, storageErrorCode } from './write-health.js';
