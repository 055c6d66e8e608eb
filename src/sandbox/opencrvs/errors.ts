import type { SimResponse } from './types.js';

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

/** The REST error body of docs/opencrvs-api.md §3.6; `issues` only for "Input validation failed". */
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
