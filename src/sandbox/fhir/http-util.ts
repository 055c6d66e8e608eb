import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest } from '@medplum/core';
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
// A transaction of a few thousand resources fits; anything larger is a mistake in a test.
const MAX_BODY_BYTES = 20 * 1024 * 1024;

/** An HTTP failure whose status Medplum's outcome ids cannot express (405, 413, 415). */
export class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome,
  ) {
    super(outcome.issue?.[0]?.details?.text ?? `HTTP ${status}`);
  }
}

export function outcomeOf(code: OperationOutcomeIssue['code'], text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

/** The request body as FHIR JSON, a form (POST _search), or undefined when empty. */
export async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new HttpFailure(413, outcomeOf('too-costly', 'Request body too large'));
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return undefined;
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (mediaType === 'application/x-www-form-urlencoded') return new URLSearchParams(text);
  if (mediaType && !/^application\/(fhir\+json|json|json-patch\+json)$/.test(mediaType)) {
    throw new HttpFailure(415, outcomeOf('not-supported', `Unsupported content type: ${mediaType}`));
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpFailure(400, badRequest('Request body is not valid JSON'));
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * The query as @medplum/core wants it. Also repairs a common client slip: an unencoded `+` in a
 * timestamp's zone (`ge2024-05-01T10:00:00+02:00`) arrives as a space; HAPI rejects it, the sandbox
 * reads it as meant.
 */
export function queryRecord(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name of new Set(params.keys())) {
    const values = params
      .getAll(name)
      .map((v) => v.replace(/^([a-z]{2})?(\d{4}-\d{2}-\d{2}T[\d:.]+) (\d{2}:\d{2})$/, '$1$2+$3'));
    out[name] = values.length === 1 ? (values[0] as string) : values;
  }
  return out;
}

export function etagOf(versionId: string): string {
  return `W/"${versionId}"`;
}
