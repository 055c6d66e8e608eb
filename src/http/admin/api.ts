// The JSON API behind the admin page (`/admin/api/...`), usable by scripts with a Bearer token.
import express, { type Request, type Response, type Router } from 'express';
import { checkDismissReason, dismissalNote, LEDGER_STATES, notReplayable } from '../../ledger/index.js';
import type { Logger } from '../../observability/logger.js';
import { adminError } from './auth.js';
import { parseListQuery } from './list-query.js';
import { auditFields, queryOr400, rowIdOr400, wrongMethod } from './request.js';
import type { AdminSettingsView, AdminTarget } from './types.js';
import { eventDetail, listItem } from './views.js';
import { writeBackSummary, writeBackView } from './write-back-views.js';

const rowId = (req: Request, res: Response) => rowIdOr400(req, res, 'id');

// A dismissal's body is `{"reason": "..."}`: one line of at most 200 characters, so a few KB is plenty.
// JSON only: a cross-site form cannot send it without a preflight, on top of the Origin check (auth.ts).
const reasonBody = express.json({ limit: '4kb' });

function reasonOf(body: unknown): unknown {
  return typeof body === 'object' && body !== null && 'reason' in body ? body.reason : undefined;
}

function summary(target: AdminTarget, settings: AdminSettingsView) {
  const { ledger } = target;
  const counts = target.counts();
  const byState: Record<string, number> = Object.fromEntries(LEDGER_STATES.map((state) => [state, 0]));
  const byEventType: Record<string, number> = {};
  for (const { state, eventType, count } of counts) {
    byState[state] = (byState[state] ?? 0) + count;
    byEventType[eventType] = (byEventType[eventType] ?? 0) + count;
  }
  const held = target.held();
  // The worker's view decides whether delivery is held; the stored hold adds what kind of problem it is.
  const stored = held ? ledger.getHold() : undefined;
  return {
    now: Date.now(),
    // Which ledger this listener serves: `replay` run beside serve checks it before asking serve to replay.
    ledgerId: ledger.ledgerId ?? null,
    counts,
    byState,
    byEventType,
    outstanding: ledger.outstanding(),
    nextDueAt: ledger.nextDueAt() ?? null,
    hold: held
      ? {
          held: true,
          reason: held.reason,
          since: held.since,
          kind: stored?.kind ?? null,
          status: stored?.status ?? null,
          rowId: stored?.rowId ?? null,
        }
      : { held: false },
    sources: target.sourceStatuses(),
    writeBacks: writeBackSummary(target.writeBacks),
    showPersonalData: settings.showPersonalData,
  };
}

export function adminApi(target: AdminTarget, settings: AdminSettingsView, log: Logger): Router {
  const router = express.Router();
  const { ledger } = target;
  const pii = settings.showPersonalData;

  router.get('/events', (req, res) => {
    const query = queryOr400(res, () => parseListQuery(req.query));
    if (!query) return;
    // A typo (`Birth`) must not look like "nothing there": the event types OpenCRVS has, or the ledger holds.
    // The ledger's counts are read only for a type that is neither (they read the whole state index).
    const eventType = query.filter.eventType;
    if (eventType !== undefined && eventType !== 'birth' && eventType !== 'death') {
      const known = new Set(['birth', 'death', ...target.counts().map((c) => c.eventType)]);
      if (!known.has(eventType))
        return adminError(res, 400, `eventType: unknown event type (one of ${[...known].sort().join(', ')})`);
    }
    // Likewise a source id: the configured ones, or one the ledger still holds rows of (removed from the
    // config since). That probe is one seek in the (source_id, id) index (migration 020). The id asked for
    // is not echoed: only the configured ones are named.
    const sourceId = query.filter.sourceId;
    if (sourceId !== undefined && !target.sourceStatuses().some((s) => s.id === sourceId)) {
      if (ledger.list({ sourceId, limit: 1 }).length === 0) {
        const configured = target.sourceStatuses().map((s) => s.id);
        return adminError(res, 400, `source: unknown source (configured: ${configured.sort().join(', ') || 'none'})`);
      }
    }
    // One row more than asked tells whether a next page exists without a COUNT over the table.
    const rows = ledger.list({ ...query.filter, limit: query.limit + 1, offset: query.offset });
    const page = rows.slice(0, query.limit);
    const hasMore = rows.length > query.limit;
    res.json({
      events: page.map((row) => listItem(row, pii)),
      limit: query.limit,
      offset: query.offset,
      before: query.filter.before ?? null,
      hasMore,
      // The cursor of the next page (`before=<next>`, with the same filters): the last row of this one.
      next: hasMore ? (page.at(-1)?.id ?? null) : null,
    });
  });

  router.get('/events/:id', (req, res) => {
    const id = rowId(req, res);
    if (id === undefined) return;
    const row = ledger.get(id);
    if (!row) return adminError(res, 404, `no ledger row ${id}`);
    const writeBack = target.writeBacks?.get(id);
    res.json(
      eventDetail(
        row,
        ledger.attempts(id),
        pii,
        writeBack ? writeBackView(writeBack) : null,
        ledger.mappingWarnings(id),
        ledger.readBy(id) ?? null,
      ),
    );
  });

  router.get('/summary', (_req, res) => {
    res.json(summary(target, settings));
  });

  router.post('/events/:id/replay', async (req, res) => {
    const id = rowId(req, res);
    if (id === undefined) return;
    const row = ledger.get(id);
    if (!row) return adminError(res, 404, `no ledger row ${id}`);
    // A failed row waiting out its backoff is made due now (sources/replay.ts): the retry it waits for, sooner.
    if (row.state !== 'dead' && row.state !== 'failed')
      return adminError(res, 409, `row ${id} ${notReplayable(row.state)}`);
    const result = await target.replay([id]);
    const skipped = result.skipped.find((s) => s.id === id);
    if (skipped) return adminError(res, 409, `row ${id} not replayed: ${skipped.reason}`);
    // The audit trail of operator actions is the log; ids, counts and the operator's address only.
    log.info(
      { rowIds: [id], ...auditFields(req) },
      row.state === 'failed' ? 'failed row made due now by admin' : 'dead row replayed by admin',
    );
    const after = ledger.get(id);
    res.json({ ...result, event: after ? listItem(after, pii) : null });
  });

  router.post('/replay-dead', async (req, res) => {
    const result = await target.replay('dead');
    log.info(
      {
        replayed: result.requeued.length,
        skipped: result.skipped.length,
        rowIds: result.requeued.slice(0, 50),
        ...auditFields(req),
      },
      'all dead rows replayed by admin',
    );
    res.json(result);
  });

  // `opencrvs-bridge dismiss` from the page: the row becomes skipped with the operator's reason, so that
  // `sync --once` stops counting it. Nothing is sent to or withdrawn from OpenCRVS.
  router.post('/events/:id/dismiss', reasonBody, (req, res) => {
    const id = rowId(req, res);
    if (id === undefined) return;
    const given = reasonOf(req.body);
    if (given === undefined) return adminError(res, 400, 'reason: required, as JSON {"reason": "…"}');
    const checked = checkDismissReason(given);
    if ('problem' in checked) return adminError(res, 400, `reason: ${checked.problem}`);
    const row = ledger.get(id);
    if (!row) return adminError(res, 404, `no ledger row ${id}`);
    if (row.state !== 'dead')
      return adminError(res, 409, `row ${id} is ${row.state}, not dead: only dead rows dismiss`);
    const mayStand = ledger.notifyMayStand(id);
    const [refused] = ledger.dismiss([id], checked.reason).refused;
    if (refused) return adminError(res, 409, `row ${id} not dismissed: ${refused.reason}`);
    // The reason is the operator's free text and may name the patient ("duplicate of Jane Doe's"): it is
    // stored with the row, and the log has its length only.
    log.info({ rowIds: [id], reasonLength: checked.reason.length, ...auditFields(req) }, 'dead row dismissed by admin');
    const after = ledger.get(id);
    const note = dismissalNote(after?.trackingId, mayStand);
    res.json({ dismissed: [id], event: after ? listItem(after, pii) : null, ...(note ? { note } : {}) });
  });

  // The undo of a dismissal: dead again, as it died; Replay is then the way on, as for any dead row.
  router.post('/events/:id/undismiss', (req, res) => {
    const id = rowId(req, res);
    if (id === undefined) return;
    const row = ledger.get(id);
    if (!row) return adminError(res, 404, `no ledger row ${id}`);
    const [refused] = ledger.undismiss([id]).refused;
    if (refused) return adminError(res, 409, `row ${id} not restored: ${refused.reason}`);
    log.info({ rowIds: [id], ...auditFields(req) }, 'dismissal undone by admin');
    const after = ledger.get(id);
    res.json({ restored: [id], event: after ? listItem(after, pii) : null });
  });

  router.all('/events', wrongMethod('GET'));
  router.all('/events/:id', wrongMethod('GET'));
  router.all('/summary', wrongMethod('GET'));
  router.all('/events/:id/replay', wrongMethod('POST'));
  router.all('/replay-dead', wrongMethod('POST'));
  router.all('/events/:id/dismiss', wrongMethod('POST'));
  router.all('/events/:id/undismiss', wrongMethod('POST'));
  return router;
}
