import { STATUS_CODES } from 'node:http';
import { eventsError, nginxHtml } from './errors.js';
import type { ActionConfirmation, ErrorEcho, FaultConfig, SandboxConfig, SimOperation, SimResponse } from './types.js';

export type FaultDecision =
  | { kind: 'none' }
  | { kind: 'error'; response: SimResponse }
  | { kind: 'drop' }
  | { kind: 'commitThenFail' };

/** mulberry32: a tiny seeded generator, so a seeded fault rate gives the same run twice. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An injected error as the events service's REST adapter shapes it (docs/opencrvs-api.md, Errors), with the
 * status's own reason (`Not Found`, `Conflict`): a 4xx that said "Internal server error" misled whoever
 * read the bridge's ledger. A 502–504 is nginx's HTML page, as in front of a real deployment.
 */
function errorResponse(status: number, retryAfterSeconds: number | undefined): SimResponse {
  const response =
    status >= 502 && status <= 504
      ? nginxHtml(status)
      : eventsError(status, STATUS_CODES[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error'));
  if (retryAfterSeconds !== undefined && (status === 429 || status === 503)) {
    response.headers = { ...response.headers, 'Retry-After': String(retryAfterSeconds) };
  }
  return response;
}

/** The sandbox's behaviour switches: country-config confirmation mode and injected faults (events API only). */
export class FaultController {
  #confirmation: ActionConfirmation = 'accept';
  #faults: FaultConfig = {};
  #seed: number | undefined;
  #random: () => number = Math.random;
  #fired = 0;

  reset(): void {
    this.configure({ actionConfirmation: 'accept', faults: {} });
    this.#seed = undefined;
    this.#random = Math.random;
  }

  /** Sets the given parts; `faults` replaces every fault and restarts the `times` budget. */
  configure(config: SandboxConfig): void {
    if (config.actionConfirmation) this.#confirmation = config.actionConfirmation;
    if (config.faults) {
      this.#faults = { ...config.faults };
      this.#fired = 0;
    }
    if (typeof config.seed === 'number') {
      this.#seed = config.seed;
      this.#random = seededRandom(config.seed);
    }
  }

  snapshot(): SandboxConfig & { faultsFired: number } {
    const config: SandboxConfig & { faultsFired: number } = {
      actionConfirmation: this.#confirmation,
      faults: { ...this.#faults },
      faultsFired: this.#fired,
    };
    if (this.#seed !== undefined) config.seed = this.#seed;
    return config;
  }

  /** How an injected error answer to a POST quotes what it was sent (none when unset). */
  get errorEcho(): ErrorEcho | undefined {
    return this.#faults.errorEcho ?? undefined;
  }

  get confirmation(): ActionConfirmation {
    return this.#confirmation;
  }

  #applies(operation: SimOperation): boolean {
    const { operations } = this.#faults;
    return !operations || operations.includes(operation);
  }

  delayMs(operation: SimOperation): number {
    const delay = this.#faults.delayMs;
    return this.#applies(operation) && typeof delay === 'number' ? delay : 0;
  }

  /** One roll per configured fault, in a fixed order (error, drop, commit-then-fail). */
  decide(operation: SimOperation): FaultDecision {
    const f = this.#faults;
    if (!this.#applies(operation)) return { kind: 'none' };
    if (typeof f.times === 'number' && this.#fired >= f.times) return { kind: 'none' };
    // Values may be null when they came through the control API's JSON.
    const roll = (rate: number | undefined) => typeof rate === 'number' && rate > 0 && this.#random() < rate;
    let decision: FaultDecision = { kind: 'none' };
    if (roll(f.errorRate))
      decision = { kind: 'error', response: errorResponse(f.errorStatus ?? 500, f.retryAfterSeconds ?? undefined) };
    else if (roll(f.dropRate)) decision = { kind: 'drop' };
    else if (roll(f.commitThenFailRate)) decision = { kind: 'commitThenFail' };
    if (decision.kind !== 'none') this.#fired++;
    return decision;
  }
}
