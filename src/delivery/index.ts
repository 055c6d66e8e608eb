// Delivery: the worker that drains the ledger's outbox into OpenCRVS, and its pure retry policy.
export { classifyFailure } from './errors.js';
export { decideRetry, type RetryDecision, type RetryInput, type RetryPolicy, retryPolicyFrom } from './retry-policy.js';
export {
  type DeliveryOutcome,
  type DeliveryWorker,
  type DeliveryWorkerDeps,
  RecheckNotReady,
  type SourceRecheck,
} from './types.js';
export { createDeliveryWorker } from './worker.js';
