// The checks every admin route starts with, answered the same way everywhere: a bad query or a bad
// row id is a 400 with a message, sent here, so a handler only goes on with good input.
import type { Request, RequestHandler, Response } from 'express';
import { adminError } from './auth.js';
import { parseRowId, QueryError } from './list-query.js';

/** The query as `parse` reads it, or undefined once a QueryError was answered with 400. */
export function queryOr400<T>(res: Response, parse: () => T): T | undefined {
  try {
    return parse();
  } catch (err) {
    if (err instanceof QueryError) {
      adminError(res, 400, err.message);
      return undefined;
    }
    throw err;
  }
}

/** The ledger row id in path parameter `param`, or undefined once a 400 was answered. */
export function rowIdOr400(req: Request, res: Response, param: string): number | undefined {
  const id = parseRowId(String(req.params[param]));
  if (id === undefined) adminError(res, 400, `${param}: a ledger row number`);
  return id;
}

/**
 * Every other method on a path the API serves: 405 with `Allow`, mounted after the path's own route, so
 * that `PUT /admin/api/summary` says "wrong method" as docs/admin.md promises, not "no such path".
 */
export function wrongMethod(allowed: 'GET' | 'POST'): RequestHandler {
  return (_req: Request, res: Response) => {
    res.setHeader('Allow', allowed === 'GET' ? 'GET, HEAD' : 'POST');
    adminError(res, 405, `use ${allowed}`);
  };
}

/**
 * What every audit line of an operator action carries besides its ids: the address the request came
 * from (the operator's machine, or the reverse proxy's: `trust proxy` is off, as a forwarded header is
 * the client's to write). Not a patient's data.
 */
export function auditFields(req: Request): { remoteAddress: string | null } {
  const address = req.socket.remoteAddress;
  // A listener on `::` sees IPv4 clients as ::ffff:a.b.c.d: logged as the a.b.c.d they are known by.
  return { remoteAddress: address?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1') ?? null };
}
