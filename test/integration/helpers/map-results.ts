import type { MapResult } from '../../../src/mapping/index.js';

/** A map result with its source fingerprint computed (see comparable). */
export type Comparable<T = MapResult> = T extends unknown
  ? Omit<T, 'sourceFingerprint'> & { sourceFingerprint?: string }
  : never;

/**
 * A map result as tests compare it: its source fingerprint computed. The result carries a function that
 * computes it (the ledger asks only on some readings), and two such functions are never deep-equal, so the
 * fingerprints, which must be equal for the same content, are compared instead.
 */
export function comparable(result: MapResult): Comparable {
  if (result.status === 'skipped' || !result.sourceFingerprint) return result as Comparable;
  return { ...result, sourceFingerprint: result.sourceFingerprint() };
}
