import { createHash } from 'node:crypto';
import type { LedgerPayload } from './types.js';

/** JSON with object keys sorted at every depth, so equal payloads hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The payload hash the ledger compares to tell a new version from a repeat (sha256, hex). */
export function hashPayload(payload: LedgerPayload): string {
  return createHash('sha256').update(canonicalJson(payload)).digest('hex');
}

/**
 * What OpenCRVS receives of a payload (delivery/send.ts: the office, the declaration, the annotation,
 * which the client sends as {} when there is none), whatever its key order: the ledger's name for a copy
 * OpenCRVS decided on (a rejection, migration 019). Not the payload hash, which the mapping computes over
 * its own output in its own key order, so that a bridge upgrade that only reorders keys moves it.
 */
export function sentCopyHash(payload: LedgerPayload): string {
  const sent = { office: payload.office, declaration: payload.declaration, annotation: payload.annotation ?? {} };
  return createHash('sha256').update(canonicalJson(sent)).digest('hex');
}

/**
 * The `copy_hash` of an attempt whose answer names no copy of the row's: OpenCRVS held an earlier NOTIFY
 * of it (`olderCopy`), which copy the row does not know. Kept with that pending answer and with the
 * rejection a pending check decides on it, so that NULL means only "recorded before migration 019"
 * (record.ts, rejectedBefore019). No sentCopyHash is empty: it names no reading either.
 */
export const NO_COPY_NAMED = '';
