// `/admin/api/write-backs`: the write-back queue (did the tracking id get back to the source record, and
// if not, why), and the one operator action on it: re-queue an abandoned job once its cause is fixed.
// Mounted behind the same token and cross-origin rule as the rest of the admin API (index.ts).
import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from '../../observability/logger.js';
import { adminError } from './auth.js';
import { auditFields, queryOr400, rowIdOr400, wrongMethod } from './request.js';
import type { WriteBackJobRecord, WriteBackQueueView } from './types.js';
import { parseWriteBackQuery } from './write-back-query.js';
import { writeBackView } from './write-back-views.js';

const NOT_CONFIGURED = 'write-back is not configured for any source';

/** The job of the row in the path, or undefined once a 400 or 404 was answered. */
function jobOf(req: Request, res: Response, queue: WriteBackQueueView | undefined): WriteBackJobRecord | undefined {
  const id = rowIdOr400(req, res, 'rowId');
  if (id === undefined) return undefined;
  if (!queue) {
    adminError(res, 404, NOT_CONFIGURED);
    return undefined;
  }
  const job = queue.get(id);
  if (!job) adminError(res, 404, `no write-back job for ledger row ${id}`);
  return job;
}

/**
 * `configured`: the source ids in the configuration, write-back or not. A source id is checked as the event
 * list checks it (api.ts): a typo answers 400 rather than an empty list that reads "no jobs there".
 */
export function writeBackApi(queue: WriteBackQueueView | undefined, configured: () => string[], log: Logger): Router {
  const router = express.Router();

  router.get('/', (req, res) => {
    const query = queryOr400(res, () => parseWriteBackQuery(req.query));
    if (!query) return;
    // A configured source, or one the queue still holds jobs of (removed from the config, or its
    // write-back turned off, since): that probe is one seek in the (source_id, outcome) index (migration
    // 005). The id asked for is not echoed: only the configured ones are named.
    const { sourceId } = query;
    if (sourceId !== undefined && !configured().includes(sourceId)) {
      if ((queue?.search({ sourceId, limit: 1, offset: 0 }) ?? []).length === 0) {
        const names = [...configured()].sort().join(', ') || 'none';
        return adminError(res, 400, `source: unknown source (configured: ${names})`);
      }
    }
    // One job more than asked tells whether a next page exists without a COUNT over the table.
    const jobs = queue?.search({ ...query, limit: query.limit + 1 }) ?? [];
    res.json({
      enabled: queue !== undefined,
      sources: queue?.sourceIds() ?? [],
      jobs: jobs.slice(0, query.limit).map(writeBackView),
      limit: query.limit,
      offset: query.offset,
      hasMore: jobs.length > query.limit,
    });
  });

  router.get('/:rowId', (req, res) => {
    const job = jobOf(req, res, queue);
    if (job) res.json(writeBackView(job));
  });

  router.post('/:rowId/requeue', (req, res) => {
    const job = jobOf(req, res, queue);
    if (!job || !queue) return;
    const id = job.rowId;
    const state = writeBackView(job).outcome;
    if (state !== 'abandoned') {
      return adminError(res, 409, `write-back of row ${id} is ${state}, not abandoned: only abandoned jobs re-queue`);
    }
    // The runner would abandon it again at once ("write-back no longer configured").
    if (!queue.sourceIds().includes(job.sourceId)) {
      return adminError(res, 409, `source ${job.sourceId} has no write-back configured: re-queueing would not help`);
    }
    // Conditional on "still abandoned": a second click, or another operator, finds it pending and gets 409.
    if (!queue.requeue(id)) return adminError(res, 409, `write-back of row ${id} changed meanwhile; reload`);
    // The audit trail of operator actions is the log; ids, counts and the operator's address only.
    log.info(
      { rowId: id, source: job.sourceId, attemptsBefore: job.attempts, ...auditFields(req) },
      'write-back job re-queued by admin',
    );
    const after = queue.get(id);
    res.json({ requeued: true, job: after ? writeBackView(after) : null });
  });

  router.all('/', wrongMethod('GET'));
  router.all('/:rowId', wrongMethod('GET'));
  router.all('/:rowId/requeue', wrongMethod('POST'));
  return router;
}
