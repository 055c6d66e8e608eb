import { setBounded } from '../../util/bounded-map.js';

/**
 * Keys kept per client. The reads' keys are resource types taken from the records' references, so a source
 * can name any number of them: past this the one stepped down longest ago goes (asked at full size again,
 * at worst one more call that fails). The mappings' searches and FHIR's resource types are far fewer.
 */
const MAX_KEYS_PER_CLIENT = 256;

/**
 * A number kept per source client and key, forgotten `forgetAfterMs` after it was set. Bounded:
 * MAX_KEYS_PER_CLIENT keys a client (the one set longest ago goes first); a client that is gone takes its
 * map along. StepMemory and LengthMemory keep their numbers so.
 */
class KeptPerClient {
  private readonly kept = new WeakMap<object, Map<string, { value: number; at: number }>>();

  constructor(
    private readonly forgetAfterMs: number,
    private readonly maxKeys: number,
  ) {}

  /** The number kept for `key`, unless none was set within forgetAfterMs. */
  get(client: object, key: string, now: number): number | undefined {
    const known = this.kept.get(client)?.get(key);
    if (!known) return undefined;
    if (now - known.at <= this.forgetAfterMs) return known.value;
    this.kept.get(client)?.delete(key);
    return undefined;
  }

  /** Sets `value` unless `covered` says the number kept (within forgetAfterMs) already covers it; whether it did. */
  set(client: object, key: string, value: number, now: number, covered: (kept: number) => boolean): boolean {
    let values = this.kept.get(client);
    if (!values) {
      values = new Map();
      this.kept.set(client, values);
    }
    const known = values.get(key);
    if (known && covered(known.value) && now - known.at <= this.forgetAfterMs) return false;
    // The newest last (setBounded): when full, the key set longest ago goes first.
    setBounded(values, key, { value, at: now }, this.maxKeys);
    return true;
  }
}

/**
 * Per source client and key (a resource type, a batchable search): the step a batched call is asked at
 * since one timed out (or was refused as too long), forgotten after `forgetAfterMs` so an EMR that was only
 * busy gets the larger calls back. Later pages and passes ask the smaller size at once instead of waiting
 * out the timeout, or being refused, again.
 * Bounded: MAX_KEYS_PER_CLIENT keys a client; a client that is gone takes its map along.
 */
export class StepMemory {
  private readonly steps: KeptPerClient;

  constructor(forgetAfterMs: number, maxKeys = MAX_KEYS_PER_CLIENT) {
    this.steps = new KeptPerClient(forgetAfterMs, maxKeys);
  }

  /** The step to ask at now: 0 unless a call timed out (or was refused) within forgetAfterMs. */
  stepOf(client: object, key: string, now = Date.now()): number {
    return this.steps.get(client, key, now) ?? 0;
  }

  /**
   * Remembers that a call asked at `step` timed out, or was refused as too long: from now on one step smaller. The step now taken, or
   * undefined when it was known already (chunks asked side by side time out together: one step down for
   * all of them, and one warning).
   */
  stepDown(client: object, key: string, step: number, now = Date.now()): number | undefined {
    const next = step + 1;
    return this.steps.set(client, key, next, now, (kept) => kept >= next) ? next : undefined;
  }
}

/**
 * Per source client and key (a resource type, a batchable search): the most values a batched call is asked
 * with since the FHIR server refused a longer list with 400 and answered each of its halves (the list's
 * length refused, not a value of it), forgotten after `forgetAfterMs` as StepMemory's steps are. It only
 * shrinks while kept: calls refused side by side (two pages bisecting at once) keep the smallest, and a limit
 * in URL characters that a later list of longer values meets below it is learnt again, smaller.
 * Bounded: MAX_KEYS_PER_CLIENT keys a client; a client that is gone takes its map along.
 */
export class LengthMemory {
  private readonly lengths: KeptPerClient;

  constructor(forgetAfterMs: number, maxKeys = MAX_KEYS_PER_CLIENT) {
    this.lengths = new KeptPerClient(forgetAfterMs, maxKeys);
  }

  /** The most values to ask at once now: undefined unless a longer list was refused within forgetAfterMs. */
  valuesOf(client: object, key: string, now = Date.now()): number | undefined {
    return this.lengths.get(client, key, now);
  }

  /** `size` (a step's), or fewer when a longer list was refused within forgetAfterMs (valuesOf). */
  capped(client: object, key: string, size: number, now = Date.now()): number {
    return Math.min(size, this.valuesOf(client, key, now) ?? Number.POSITIVE_INFINITY);
  }

  /**
   * Remembers that lists of `values` were answered where a longer one was refused: from now on at most
   * that many. Whether that is news (not when as few or fewer are known already: one warning for lists
   * refused together).
   */
  limit(client: object, key: string, values: number, now = Date.now()): boolean {
    return this.lengths.set(client, key, values, now, (kept) => kept <= values);
  }
}
