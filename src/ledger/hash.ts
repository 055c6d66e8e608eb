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
