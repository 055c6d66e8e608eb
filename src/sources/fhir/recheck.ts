// The worker's recheck of a FHIR source's waiting rows (sources/recheck.ts SubjectRecheck): their subjects
// read and evaluated again by reevaluate. A FHIR row's subjectKey is its subject's reference (`Patient/1`,
// SourcePipeline.commit), so the keys are the references read, and a failure reevaluate ties to a
// reference names the rows of that subject.
import { RecheckNotReady } from '../../delivery/types.js';
import type { SubjectRecheck } from '../recheck.js';
import { failureToThrow, isForeign } from '../shared/source-error.js';
import { type ReevaluatedSource, reevaluate } from './reevaluate.js';

/**
 * Evaluates the subjects again through `source`. A page from a proxy in front of the EMR, met by a
 * subject's own read or by one of its context reads (its evaluation fails then, and so does every one the
 * page stopped: SourcePipeline.evaluate), says nothing of that record, nor of the others: those subjects'
 * rows wait alone (RecheckNotReady naming them), and the rows whose reads were answered go on as their
 * evaluation recorded them. Before, every row of the source waited with them (app.ts), recheck after
 * recheck while the page lasted. Another failure goes with the wait (`otherFailure`), or is thrown as
 * reevaluate throws it: the worker sends those subjects' rows as recorded. A page reevaluate could not tie
 * to a subject is thrown as it is, and every row of the source waits (app.ts).
 */
export function fhirRecheck(source: ReevaluatedSource): SubjectRecheck {
  return async (subjectKeys) => {
    const failed: Array<{ ref: string; error: unknown }> = [];
    try {
      // The rows' subjects, not changed records: a mother's death row does not map her children's births.
      await reevaluate(source, subjectKeys, { readers: false, onFailure: (ref, error) => failed.push({ ref, error }) });
    } catch (err) {
      throw waitsFor(err, failed);
    }
  };
}

/** What the recheck throws for `err`, reevaluate's throw after the `failed` reads. */
function waitsFor(err: unknown, failed: ReadonlyArray<{ ref: string; error: unknown }>): unknown {
  const pages = failed.filter(({ error }) => isForeign(error));
  if (!isForeign(err) || !pages.some(({ error }) => error === err)) return err;
  const others = failed.filter(({ error }) => !isForeign(error)).map(({ error }) => error);
  return new RecheckNotReady(err.message, {
    subjectKeys: [...new Set(pages.map(({ ref }) => ref))],
    otherFailure: failureToThrow(others),
  });
}
