import type { Response } from 'express';

export type IssueCode =
  | 'invalid'
  | 'security'
  | 'not-found'
  | 'not-supported'
  | 'too-costly'
  | 'exception'
  | 'forbidden'
  | 'throttled'
  | 'transient';

/** Answers with a FHIR OperationOutcome: what FHIR servers expect back from a subscription endpoint. */
export function sendOutcome(res: Response, status: number, code: IssueCode, diagnostics: string): void {
  res
    .status(status)
    .type('application/fhir+json')
    .send(
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: status >= 500 ? 'fatal' : 'error', code, diagnostics }],
      }),
    );
}
