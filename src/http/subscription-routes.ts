import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from '../observability/logger.js';
import { MinuteTally } from '../observability/minute-tally.js';
import { NotificationError } from '../sources/fhir/notification.js';
import type { SubscriptionReceiver } from '../sources/fhir/receiver.js';
import { AddressSlots, addressKey, type SlotLimits } from './address-slots.js';
import { clientErrorStatus } from './client-error.js';
import { sendOutcome } from './operation-outcome.js';

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Bodies read at once before their sender is authenticated: for a source with only an `hmacSecret`
 * (Medplum) the signature covers the body, and a source with no secret has nothing to check, so the
 * body is read first. Without a bound, an unauthenticated client holding slow uploads made the bridge
 * hold up to 1,000 connections × `bodyLimitBytes` (1 GB by default). So: as many reads as fit in 32 MB
 * of bodies (2 to 32), at most a quarter of them for one remote address, so one client cannot take
 * them all from the EMR; past that, 503 with Retry-After (the EMR resends). A legitimate read holds its
 * slot for a moment (the body comes with the headers), so only a slow or stalled upload fills them.
 * A bearer `secret` is checked before the body, and reads for such a source are not counted.
 */
export function unauthenticatedReadLimits(bodyLimitBytes: number): SlotLimits {
  const total = Math.min(32, Math.max(2, Math.floor((32 * 1_048_576) / bodyLimitBytes)));
  return { total, perAddress: Math.max(1, Math.floor(total / 4)) };
}
// Slots free within seconds (a stalled upload is cut at requestTimeout, 30 s).
const READS_FULL_RETRY_AFTER_SECONDS = 10;

// What is left of the path after `/{sourceId}` when the route is `/:sourceId/:type/:id` (a trailing `/` matches too).
const PATH_STYLE = /^\/[^/]+\/[^/]+\/?$/;

/**
 * `POST /fhir-subscription/{sourceId}` and `PUT|DELETE|POST /fhir-subscription/{sourceId}/{Type}/{id}`.
 * The body is read raw (bounded) so the HMAC is computed over exactly the bytes sent, and the secret
 * is checked before the JSON is parsed.
 */
export function subscriptionRoutes(
  receiver: SubscriptionReceiver,
  bodyLimitBytes: number,
  logger: Logger,
  now: () => number = Date.now,
): Router {
  const router = express.Router();
  const readBody = express.raw({ type: () => true, limit: bodyLimitBytes });
  const limits = unauthenticatedReadLimits(bodyLimitBytes);
  const unauthenticatedReads = new AddressSlots(limits);
  const log = logger.child({ component: 'subscription-receiver' });
  // Without this line the operator sees nothing: the EMR gets a 503 and resends, and only its own log
  // says so. One line a minute at most: the count since the last line, and the source and remote
  // address of the refusal that wrote it (a flood from one address names that address). Two numbers
  // are kept, whatever the flood, never one entry per address. A client that fills the slots can be
  // refused hundreds of times a second, and one line each would bury everything else in the log.
  const refusals = new MinuteTally();
  const logReadsFull = (sourceId: string, address: string) => {
    const refused = refusals.add(now());
    if (refused === undefined) return;
    const reading = unauthenticatedReads.inUse();
    log.warn(
      {
        source: sourceId,
        // As the slots count it: an IPv6 address by its /64. Not `address`, which the logger redacts.
        remote: addressKey(address),
        refused,
        full: reading >= limits.total ? 'all slots' : 'address share',
        reading,
        readingFromRemote: unauthenticatedReads.inUse(address),
        slots: limits.total,
        perAddress: limits.perAddress,
      },
      'notifications refused with 503 before their bodies were read: read slots full, to be resent',
    );
  };
  // Before the body is read: an unknown source or a wrong bearer secret costs the sender nothing more.
  router.use('/:sourceId', (req: Request, res: Response, next: NextFunction) => {
    const sourceId = String(req.params.sourceId);
    try {
      receiver.refuseEarly(sourceId, header(req, 'authorization'), req.socket.remoteAddress, PATH_STYLE.test(req.path));
    } catch (err) {
      if (!(err instanceof NotificationError)) throw err;
      // The body is not read: close the connection after the answer rather than drain it.
      res.setHeader('connection', 'close');
      if (err.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(err.retryAfterSeconds));
      sendOutcome(res, err.status, err.code, err.message);
      return;
    }
    if (receiver.checksBearerFirst(sourceId)) return readBody(req, res, next);
    // The sender is not known yet: the read takes one of the bounded slots, given back when it ends.
    const address = req.socket.remoteAddress;
    const slot = unauthenticatedReads.take(address);
    if (slot === undefined) {
      // No address: the socket closed before anyone looked; nothing was full.
      if (address !== undefined) logReadsFull(sourceId, address);
      res.setHeader('connection', 'close');
      res.setHeader('retry-after', String(READS_FULL_RETRY_AFTER_SECONDS));
      sendOutcome(res, 503, 'transient', 'too many notifications being read; retry later');
      return;
    }
    let held = true;
    const release = () => {
      if (held) unauthenticatedReads.release(slot);
      held = false;
    };
    res.once('close', release); // the connection ended before the read did
    readBody(req, res, (err?: unknown) => {
      release();
      next(err);
    });
  });

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
        remoteAddress: req.socket.remoteAddress,
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
