// Rows that became dead through this connection, counted for bridge_dead_rows_total. The state gauge
// (bridge_events{state="dead"}) cannot say that a row died: a replay or a dismissal lowers it, which
// Prometheus' increase() takes for a counter reset, and a death and a replay within one scrape cancel.
// A row becomes dead in several places (a record that does not map, at intake; an attempt OpenCRVS
// refused, at settle; a NOTIFY it decided against later; a dismissal undone), so the count is kept by
// the database itself: a TEMP trigger (this connection only, nothing in the ledger file) into a TEMP
// table, which a transaction rolled back leaves as it was.
import type Database from 'better-sqlite3';
import type { DeadCount } from './types.js';

const COUNT = `
  INSERT INTO temp.dead_rows (source_id, event_type, n) VALUES (NEW.source_id, NEW.event_type, 1)
  ON CONFLICT DO UPDATE SET n = n + 1;`;

export function countDeadRows(db: Database.Database): () => DeadCount[] {
  db.exec(`
    CREATE TEMP TABLE IF NOT EXISTS dead_rows (
      source_id TEXT NOT NULL, event_type TEXT NOT NULL, n INTEGER NOT NULL,
      PRIMARY KEY (source_id, event_type));
    CREATE TEMP TRIGGER IF NOT EXISTS dead_row_inserted AFTER INSERT ON ledger_rows
      WHEN NEW.state = 'dead' BEGIN ${COUNT} END;
    CREATE TEMP TRIGGER IF NOT EXISTS dead_row_updated AFTER UPDATE OF state ON ledger_rows
      WHEN NEW.state = 'dead' AND OLD.state IS NOT 'dead' BEGIN ${COUNT} END;`);
  const all = db.prepare<[], DeadCount>(
    'SELECT source_id AS sourceId, event_type AS eventType, n AS count FROM temp.dead_rows',
  );
  return () => all.all();
}
