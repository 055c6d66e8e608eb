// The one place that talks HTTP: a bounded request (AbortSignal.timeout covers connect, headers and
// body) whose transport failures become retryable OpenCrvsErrors with scrubbed descriptions.
import { describeTransportFailure } from './classify.js';
import { OpenCrvsError } from './errors.js';
import type { SecretScrubber } from './scrub.js';

export interface Transport {
  fetch: typeof fetch;
  timeoutMs: number;
  scrubber: SecretScrubber;
}

export interface ExchangeRequest {
  operation: string;
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface ExchangeResponse {
  status: number;
  retryAfter: string | null;
  /** Parsed JSON, or undefined when the body was empty or not JSON. */
  json: unknown;
  /** True when `json` holds a parsed value. */
  isJson: boolean;
  text: string;
}

export async function exchange(transport: Transport, request: ExchangeRequest): Promise<ExchangeResponse> {
  try {
    const response = await transport.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(transport.timeoutMs),
      redirect: 'error',
    });
    const text = await response.text();
    const parsed = parseJson(text);
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      json: parsed.value,
      isJson: parsed.ok,
      text,
    };
  } catch (err) {
    throw transportError(transport, request.operation, err);
  }
}

function parseJson(text: string): { ok: boolean; value: unknown } {
  if (text.trim() === '') return { ok: false, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, value: undefined };
  }
}

/**
 * Network errors and timeouts are retryable: the request may or may not have reached OpenCRVS, and
 * every write the bridge makes is idempotent on its transactionId, so sending it again is safe.
 * The original error is not kept as `cause` (undici messages can quote the URL, and the token URL
 * carries the client secret); a scrubbed copy of its text is kept instead.
 */
export function transportError(transport: Transport, operation: string, err: unknown): OpenCrvsError {
  const { description, timedOut } = describeTransportFailure(err);
  const clean = transport.scrubber.text(description);
  return new OpenCrvsError({
    kind: timedOut ? 'timeout' : 'network',
    classification: 'retryable',
    message: timedOut ? `no answer within ${transport.timeoutMs} ms` : clean,
    operation,
    cause: new Error(clean),
  });
}

/** The body to attach to an error: JSON as parsed, else the text; scrubbed and size-bounded. */
export function errorBodyOf(transport: Transport, response: ExchangeResponse): unknown {
  return transport.scrubber.value(response.isJson ? response.json : response.text);
}
