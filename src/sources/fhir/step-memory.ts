import { setBounded } from '../shared/bounded-map.js';

/**
 * Keys kept per client. The reads' keys are resource types taken from the records' references, so a source
 * can name any number of them: past this the one stepped down longest ago goes (asked at full size again,
 * at worst one more call that fails). The mappings' searches and FHIR's resource types are far fewer.
 */
const MAX_KEYS_PER_CLIENT = 256;

/**
 * Per source client and key (a resource type, a batchable search): the step a batched call is asked at
 * since one timed out (or was refused as too long), forgotten after `forgetAfterMs` so an EMR that was only
 * busy gets the larger calls back. Later pages and passes ask the smaller size at once instead of waiting
 * out the timeout, or being refused, again.
 * Bounded: MAX_KEYS_PER_CLIENT keys a client; a client that is gone takes its map along.
 */
export class StepMemory {
  private readonly steps = new WeakMap<object, Map<string, { step: number; at: number }>>();

  constructor(
    private readonly forgetAfterMs: number,
    private readonly maxKeys = MAX_KEYS_PER_CLIENT,
  ) {}

  /** The step to ask at now: 0 unless a call timed out (or was refused) within forgetAfterMs. */
  stepOf(client: object, key: string, now = Date.now()): number {
    const known = this.steps.get(client)?.get(key);
    if (!known) return 0;
    if (now - known.at <= this.forgetAfterMs) return known.step;
    this.steps.get(client)?.delete(key);
    return 0;
  }

  /**
   * Remembers that a call asked at `step` timed out, or was refused as too long: from now on one step smaller. The step now taken, or
   * undefined when it was known already (chunks asked side by side time out together: one step down for
   * all of them, and one warning).
   */
  stepDown(client: object, key: string, step: number, now = Date.now()): number | undefined {
    let steps = this.steps.get(client);
    if (!steps) {
      steps = new Map();
      this.steps.set(client, steps);
    }
    const next = step + 1;
    const known = steps.get(key);
    if (known && known.step >= next && now - known.at <= this.forgetAfterMs) return undefined;
    // The newest last (setBounded): when full, the key stepped down longest ago goes first.
    setBounded(steps, key, { step: next, at: now }, this.maxKeys);
    return next;
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
  private readonly lengths = new WeakMap<object, Map<string, { values: number; at: number }>>();

  constructor(
    private readonly forgetAfterMs: number,
    private readonly maxKeys = MAX_KEYS_PER_CLIENT,
  ) {}

  /** The most values to ask at once now: undefined unless a longer list was refused within forgetAfterMs. */
  valuesOf(client: object, key: string, now = Date.now()): number | undefined {
    const known = this.lengths.get(client)?.get(key);
    if (!known) return undefined;
    if (now - known.at <= this.forgetAfterMs) return known.values;
    this.lengths.get(client)?.delete(key);
    return undefined;
  }

  /**
   * Remembers that lists of `values` were answered where a longer one was refused: from now on at most
   * that many. Whether that is news (not when as few or fewer are known already: one warning for lists
   * refused together).
   */
  limit(client: object, key: string, values: number, now = Date.now()): boolean {
    let lengths = this.lengths.get(client);
    if (!lengths) {
      lengths = new Map();
      this.lengths.set(client, lengths);
    }
    const known = lengths.get(key);
    if (known && known.values <= values && now - known.at <= this.forgetAfterMs) return false;
    setBounded(lengths, key, { values, at: now }, this.maxKeys);
    return true;
  }
}
