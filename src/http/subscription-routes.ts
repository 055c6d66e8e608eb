import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { NotificationError } from '../sources/fhir/notification.js';
import type { SubscriptionReceiver } from '../sources/fhir/receiver.js';
import { clientErrorStatus } from './client-error.js';
import { sendOutcome } from './operation-outcome.js';

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * `POST /fhir-subscription/{sourceId}` and `PUT|DELETE|POST /fhir-subscription/{sourceId}/{Type}/{id}`.
 * The body is read raw (bounded) so the HMAC is computed over exactly the bytes sent, and the secret
 * is checked before the JSON is parsed.
 */
export function subscriptionRoutes(receiver: SubscriptionReceiver, bodyLimitBytes: number): Router {
  const router = express.Router();
  // Before the body is read: an unknown source or a wrong bearer secret costs the sender nothing more.
  router.use('/:sourceId', (req: Request, res: Response, next: NextFunction) => {
    try {
      receiver.refuseEarly(String(req.params.sourceId), header(req, 'authorization'));
      next();
    } catch (err) {
      if (!(err instanceof NotificationError)) throw err;
      // The body is not read: close the connection after the answer rather than drain it.
      res.setHeader('connection', 'close');
      sendOutcome(res, err.status, err.code, err.message);
    }
  });
  router.use(express.raw({ type: () => true, limit: bodyLimitBytes }));

  const handle = (req: Request, res: Response) => {
    const sourceId = String(req.params.sourceId);
    const type = req.params.type === undefined ? undefined : String(req.params.type);
    const id = req.params.id === undefined ? undefined : String(req.params.id);
    try {
      const outcome = receiver.receive({
        sourceId,
        method: req.method,
        pathRef: type !== undefined && id !== undefined ? { type, id } : undefined,
        contentType: header(req, 'content-type'),
        rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
        authorization: header(req, 'authorization'),
        signature: header(req, 'x-signature'),
        deletedResource: header(req, 'x-medplum-deleted-resource'),
      });
      // Written directly, not with res.json(): the ack is the receiver's hot path, and the body is fixed.
      const body = JSON.stringify({ received: true, kind: outcome.kind });
      res.writeHead(outcome.status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    } catch (err) {
      if (err instanceof NotificationError) {
        if (err.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(err.retryAfterSeconds));
        sendOutcome(res, err.status, err.code, err.message);
        return;
      }
      throw err;
    }
  };

  router.post('/:sourceId', handle);
  router.all('/:sourceId/:type/:id', handle);
  router.all('/:sourceId', (_req, res) => sendOutcome(res, 405, 'not-supported', 'method not allowed'));
  // Body-parser failures (too large, bad encoding) arrive here before the handler.
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const status = clientErrorStatus(err);
    if (status === 413) return sendOutcome(res, 413, 'too-costly', 'body too large');
    if (status) return sendOutcome(res, status, 'invalid', 'unreadable body');
    next(err);
  });
  return router;
}
