// `/admin/api/write-backs`: the write-back queue (did the tracking id get back to the source record, and
// if not, why), and the one operator action on it: re-queue an abandoned job once its cause is fixed.
// Mounted behind the same token and cross-origin rule as the rest of the admin API (index.ts).
import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from '../../observability/logger.js';
import { adminError } from './auth.js';
import { parseRowId, QueryError } from './list-query.js';
import type { WriteBackQueueView, WriteBackSearch } from './types.js';
import { parseWriteBackQuery } from './write-back-query.js';
import { writeBackView } from './write-back-views.js';

const NOT_CONFIGURED = 'write-back is not configured for any source';

function rowId(req: Request, res: Response): number | undefined {
  const id = parseRowId(String(req.params.rowId));
  if (id === undefined) adminError(res, 400, 'rowId: a ledger row number');
  return id;
}

export function writeBackApi(queue: WriteBackQueueView | undefined, log: Logger): Router {
  const router = express.Router();

  router.get('/', (req, res) => {
    let query: WriteBackSearch;
    try {
      query = parseWriteBackQuery(req.query);
    } catch (err) {
      if (err instanceof QueryError) return adminError(res, 400, err.message);
      throw err;
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
    const id = rowId(req, res);
    if (id === undefined) return;
    if (!queue) return adminError(res, 404, NOT_CONFIGURED);
    const job = queue.get(id);
    if (!job) return adminError(res, 404, `no write-back job for ledger row ${id}`);
    res.json(writeBackView(job));
  });

  router.post('/:rowId/requeue', (req, res) => {
    const id = rowId(req, res);
    if (id === undefined) return;
    if (!queue) return adminError(res, 404, NOT_CONFIGURED);
    const job = queue.get(id);
    if (!job) return adminError(res, 404, `no write-back job for ledger row ${id}`);
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
    // The audit trail of operator actions is the log; ids and counts only.
    log.info({ rowId: id, source: job.sourceId, attemptsBefore: job.attempts }, 'write-back job re-queued by admin');
    const after = queue.get(id);
    res.json({ requeued: true, job: after ? writeBackView(after) : null });
  });

  router.all('/:rowId/requeue', (_req, res) => adminError(res, 405, 'use POST'));
  return router;
}
