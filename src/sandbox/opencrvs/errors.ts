import type { ErrorEcho, SimResponse } from './types.js';

// tRPC error codes by HTTP status, as the events service's REST adapter (trpc-to-openapi) answers them.
const TRPC_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_SUPPORTED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_SERVER_ERROR',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};

export function trpcCode(status: number): string {
  return TRPC_CODES[status] ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST');
}

/** The REST error body (docs/opencrvs-api.md, "Errors"); `issues` only for "Input validation failed". */
export function eventsError(status: number, message: string, path?: string, issues?: unknown[]): SimResponse {
  const code = trpcCode(status);
  const data: Record<string, unknown> = { code, httpStatus: status };
  if (path) data.path = path;
  const body: Record<string, unknown> = { message, code, data };
  if (issues) body.issues = issues;
  return { status, body };
}

export function inputValidationFailed(path: string, issues: unknown[]): SimResponse {
  return eventsError(400, 'Input validation failed', path, issues);
}

/** The gateway (Hapi, hapi-auth-jwt2) refusing a bearer token. */
export function gatewayUnauthorized(message: string): SimResponse {
  return {
    status: 401,
    body: { statusCode: 401, error: 'Unauthorized', message },
    headers: { 'WWW-Authenticate': 'Bearer' },
  };
}

export const NOT_FOUND: SimResponse = eventsError(404, 'Not found');

/** What nginx answers for a 502/503/504 of its upstream: HTML, not JSON. */
export function nginxHtml(status: number): SimResponse {
  const reason = { 502: 'Bad Gateway', 503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out' }[status];
  const title = `${status} ${reason ?? 'Error'}`;
  return {
    status,
    body: `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
    headers: { 'Content-Type': 'text/html' },
  };
}

/**
 * An error answer that quotes the declaration of a request (its body when it has none), written as
 * `echo` says: how a server or a proxy in front of it repeats what it was sent, which the bridge must
 * not carry into its ledger or logs in any of these forms.
 */
export function echoedError(status: number, echo: ErrorEcho, requestBody: unknown): SimResponse {
  const sent =
    typeof requestBody === 'object' && requestBody !== null && 'declaration' in requestBody
      ? requestBody.declaration
      : requestBody;
  const quoted = JSON.stringify(sent) ?? '';
  if (echo === 'html') {
    // No <title>: the bridge keeps a page's title when it has one, and this page is about its text.
    const text = `could not process declaration ${htmlEscaped(quoted)}`;
    return {
      status,
      body: `<html><body><h1>${status} ${trpcCode(status)}</h1><p>${text}</p></body></html>`,
      headers: { 'Content-Type': 'text/html' },
    };
  }
  const written = {
    plain: quoted,
    json: JSON.stringify(quoted).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ),
    percent: encodeURIComponent(quoted),
    upper: quoted.toUpperCase(),
    nfd: quoted.normalize('NFD'),
  }[echo];
  return eventsError(status, `could not process declaration ${written}`);
}

function htmlEscaped(text: string): string {
  const named: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  return text.replace(/[&<>"'\u0080-\u{10ffff}]/gu, (c) => named[c] ?? `&#${c.codePointAt(0)};`);
}
