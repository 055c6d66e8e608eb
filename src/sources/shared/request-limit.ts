import pLimit, { type LimitFunction } from 'p-limit';
import type { SourceSettings } from '../../config/types.js';

/** Calls in flight to one source when `maxConcurrentRequests` is not set (the schema's default). */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 8;

/**
 * The slots a source's client sends its calls through. A source is a hospital's production system: a
 * poll pass's batched searches, the inbox's reads and the write-backs share these slots instead of
 * each opening as many connections as it has work.
 */
export function sourceRequestLimit(settings: SourceSettings): LimitFunction {
  return pLimit(settings.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS);
}
