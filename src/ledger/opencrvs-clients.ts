// The OpenCRVS client ids this bridge has sent with, kept in the ledger's meta. An event's CREATE names
// the client that made it (opencrvs/ownership.ts): after the client is replaced (a new secret means a new
// client in OpenCRVS's UI), the events the earlier one created are still this bridge's own. Without the
// list, their in-doubt, pending and withdrawn rows would be taken for another bridge's.
import type { Ledger } from './types.js';

const META_KEY = 'opencrvs.clients';
/** A bridge replaces its client a handful of times in its life; the bound only guards the meta row. */
const MAX_CLIENTS = 100;

function parse(stored: string | undefined): string[] {
  if (!stored) return [];
  try {
    const value: unknown = JSON.parse(stored);
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return [];
  }
}

/** `has` and `add` over the ledger's list; another process (`sync` beside `serve`) may add to it too. */
export function ledgerOwnClients(ledger: Pick<Ledger, 'getMeta' | 'setMeta'>): {
  has(clientId: string): boolean;
  add(clientId: string): void;
} {
  let known = new Set(parse(ledger.getMeta(META_KEY)));
  const reread = () => {
    known = new Set([...known, ...parse(ledger.getMeta(META_KEY))]);
  };
  return {
    has(clientId) {
      if (!known.has(clientId)) reread();
      return known.has(clientId);
    },
    add(clientId) {
      if (known.has(clientId)) return;
      reread();
      if (known.has(clientId)) return;
      known.add(clientId);
      ledger.setMeta(META_KEY, JSON.stringify([...known].slice(-MAX_CLIENTS)));
    },
  };
}
