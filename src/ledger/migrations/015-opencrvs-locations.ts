import type { Migration } from './types.js';

export const migration015: Migration = {
  version: 15,
  name: 'opencrvs-locations',
  sql: `
    -- What OpenCRVS last answered about each location reference (opencrvs/locations.ts, lastKnown), for
    -- the OpenCRVS it came from: one row per reference, written only when its answer changes. It was one
    -- meta value (opencrvs:locations), rewritten whole (up to ~350 kB) at every new answer, and a process
    -- beside serve (a replay) wrote the copy it had loaded at its start over serve's newer answers.
    -- location_id NULL: OpenCRVS does not list the reference. The rowid orders the answers by change (a
    -- changed answer is inserted again), so the oldest is forgotten first.
    CREATE TABLE opencrvs_locations (
      opencrvs TEXT NOT NULL,
      ref TEXT NOT NULL,
      location_id TEXT,
      location_type TEXT,
      changed_at INTEGER NOT NULL,
      PRIMARY KEY (opencrvs, ref)
    );
    -- The answers kept so far, in their order. The value is only a hint: anything unreadable in it is left
    -- out (CASE keeps each json_ function from reading what is not JSON).
    INSERT OR IGNORE INTO opencrvs_locations (opencrvs, ref, location_id, location_type, changed_at)
      SELECT json_extract(m.value, '$.opencrvs'), json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'),
        json_extract(e.value, '$[2]'), m.updated_at
      FROM meta m,
        json_each(CASE WHEN NOT json_valid(m.value) THEN '{"known":[]}'
          WHEN json_type(m.value, '$.known') = 'array' AND json_type(m.value, '$.opencrvs') = 'text' THEN m.value
          ELSE '{"known":[]}' END, '$.known') e
      WHERE m.key = 'opencrvs:locations'
        AND CASE WHEN e.type = 'array' THEN
          json_type(e.value, '$[0]') = 'text' AND (json_type(e.value, '$[1]') = 'null'
            OR (json_type(e.value, '$[1]') = 'text' AND json_type(e.value, '$[2]') = 'text'))
          ELSE 0 END
      ORDER BY e.key;
    DELETE FROM meta WHERE key = 'opencrvs:locations';
  `,
};
