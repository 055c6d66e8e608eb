// Whether the hold probe's re-try of a row shows the operator problem gone. Its outcome alone does not: a
// row withdrawn at its source is settled with one idempotent create (withdraw.ts), a row found notified by a
// lookup sends nothing, and a call that never reached OpenCRVS was not refused, which neither proves a NOTIFY
// allowed (a missing notify scope) nor an office known. So the probe's calls are watched, and the hold is
// released only for an answer to the call the problem refused.
import type { HoldState } from '../ledger/index.js';
import { isOpenCrvsError } from '../opencrvs/errors.js';
import type { OpenCrvsApi } from '../opencrvs/types.js';
import { classifyFailure } from './errors.js';
import { unreached } from './outage.js';

/**
 * Refusals that say nothing of whether OpenCRVS would take the call: a rate limit (a gateway's, perhaps), a
 * 2xx that is not OpenCRVS's answer (a proxy's page), a redirect or a path not found (the URL, not the call).
 */
const UNHEARD = new Set(['rate-limited', 'invalid-response', 'config']);

/** An events-API call of the re-try that OpenCRVS answered: `refused` is the kind of its refusal, if refused. */
export interface ProbeAnswer {
  call: 'createEvent' | 'notify' | 'createAndNotify';
  refused?: string;
}

/** `api`, with each answer its create and notify calls get recorded in `answers` (bounded: one re-try's calls). */
export function watchedApi(api: OpenCrvsApi, answers: ProbeAnswer[]): OpenCrvsApi {
  const watch = async <T>(call: ProbeAnswer['call'], sent: Promise<T>): Promise<T> => {
    try {
      const answer = await sent;
      answers.push({ call });
      return answer;
    } catch (err) {
      if (isOpenCrvsError(err)) {
        const failure = classifyFailure(err);
        if (!unreached(failure) && !UNHEARD.has(failure.error.kind))
          answers.push({ call, refused: failure.error.kind });
      }
      throw err;
    }
  };
  return {
    ...(api.version ? { version: api.version } : {}),
    createEvent: (input) => watch('createEvent', api.createEvent(input)),
    notify: (input) => watch('notify', api.notify(input)),
    createAndNotify: (input) => watch('createAndNotify', api.createAndNotify(input)),
    listLocations: (query, options) => api.listLocations(query, options),
    checkToken: (options) => api.checkToken(options),
    ...(api.otherClientOf ? { otherClientOf: (action) => api.otherClientOf?.(action) } : {}),
  };
}

/**
 * Refused credentials (401): any events-API call OpenCRVS took them for. Anything else (a scope, an office
 * OpenCRVS does not know, its configuration): a NOTIFY, the call such a hold refused, answered other than
 * with a refusal of that kind, of the credentials or of a scope.
 */
export function holdDisproved(hold: Pick<HoldState, 'kind'>, answers: readonly ProbeAnswer[]): boolean {
  if (hold.kind === 'unauthorized') return answers.some((a) => a.refused !== 'unauthorized');
  const refusedAgain = new Set([hold.kind, 'unauthorized', 'forbidden']);
  return answers.some(
    (a) =>
      (a.call === 'notify' || a.call === 'createAndNotify') &&
      (a.refused === undefined || !refusedAgain.has(a.refused)),
  );
}
