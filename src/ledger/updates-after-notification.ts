// Source records changed after OpenCRVS was notified of their event: the bridge never sends such a change
// (the registrar corrects the record in OpenCRVS, docs/runbook.md), so an operator must hear of it. The
// ledger counts one (updates_after_notification) in several places: a newer version read by a poll, the
// inbox, a recheck or a replay; an invalid reading of changed content; a version that came while the
// notified copy was in flight; a NOTIFY in doubt; a withdrawal that found the event notified. As for dead
// rows (deaths.ts), the database itself notes each: a TEMP trigger (this connection only, nothing in the
// ledger file) adds to a per source and event type count (bridge_updates_after_notification_total) and
// keeps the row's id until it is logged. A transaction rolled back leaves both as they were, so a log line
// never names a change that was not recorded.
import type Database from 'better-sqlite3';
import type { Logger } from '../observability/logger.js';
import type { DeadCount } from './types.js';

/** Rows logged per line; the rest wait for the next call (a poll pass of corrections is no flood of lines). */
const LOG_BATCH = 100;

export interface UpdatesAfterNotification {
  /** Updates after notification recorded through this connection since it opened, by source and event type. */
  counts(): DeadCount[];
  /** Logs the rows updated since the last call (ids only: no personal data), once the transaction committed. */
  logNew(): void;
}

export function countUpdatesAfterNotification(db: Database.Database, log: Logger): UpdatesAfterNotification {
  // A JS flag the trigger raises, so that the common call (no update) costs no query.
  let noted = false;
  db.function('bridge_note_update_after_notification', { deterministic: false, varargs: false }, () => {
    noted = true;
    return null;
  });
  db.exec(`
    CREATE TEMP TABLE IF NOT EXISTS updates_after_notification (
      source_id TEXT NOT NULL, event_type TEXT NOT NULL, n INTEGER NOT NULL,
      PRIMARY KEY (source_id, event_type));
    CREATE TEMP TABLE IF NOT EXISTS rows_updated_after_notification (id INTEGER PRIMARY KEY);
    CREATE TEMP TRIGGER IF NOT EXISTS row_updated_after_notification AFTER UPDATE OF updates_after_notification
      ON ledger_rows WHEN NEW.updates_after_notification > OLD.updates_after_notification BEGIN
        INSERT INTO temp.updates_after_notification (source_id, event_type, n)
          VALUES (NEW.source_id, NEW.event_type, NEW.updates_after_notification - OLD.updates_after_notification)
          ON CONFLICT DO UPDATE SET n = n + excluded.n;
        INSERT OR IGNORE INTO temp.rows_updated_after_notification (id) VALUES (NEW.id);
        SELECT bridge_note_update_after_notification();
      END;`);
  const all = db.prepare<[], DeadCount>(
    'SELECT source_id AS sourceId, event_type AS eventType, n AS count FROM temp.updates_after_notification',
  );
  const unlogged = db
    .prepare<[number], number>('SELECT id FROM temp.rows_updated_after_notification ORDER BY id LIMIT ?')
    .pluck();
  const forget = db.prepare<[number]>('DELETE FROM temp.rows_updated_after_notification WHERE id <= ?');
  const logNew = (): void => {
    // Inside a transaction the update may yet be rolled back: logged by the call that commits it. After
    // close() (also wrapped) there is nothing to read.
    if (!noted || !db.open || db.inTransaction) return;
    noted = false;
    // The call that recorded the update succeeded: a failure here (a temp store that cannot be written)
    // must not make it look failed to its caller. The rows stay listed, for the next call to log.
    try {
      for (let ids = unlogged.all(LOG_BATCH); ids.length > 0; ids = unlogged.all(LOG_BATCH)) {
        forget.run(ids[ids.length - 1] as number);
        log.warn(
          { rows: ids },
          'source records changed after OpenCRVS was notified: the change is not sent; the registrar corrects the record in OpenCRVS (ledger --updated-after-notification lists them; docs/runbook.md)',
        );
      }
    } catch (err) {
      noted = true;
      log.warn({ err }, 'the rows updated after notification could not be listed for the log; tried again later');
    }
  };
  return { counts: () => all.all(), logNew };
}
