// Migrations are TypeScript modules (not .sql files) so the compiled build ships them with no asset
// copying. Append new ones to the list; never edit or reorder a shipped one.
import { migration001 } from './001-initial.js';
import { migration002 } from './002-requeue-generation-and-inbox.js';
import { migration003 } from './003-write-backs.js';
import { migration004 } from './004-drop-locked-index.js';
import { migration005 } from './005-write-back-counts-index.js';
import { migration006 } from './006-lookup-indexes.js';
import { migration007 } from './007-rechecked-at.js';
import { migration008 } from './008-withdrawn-reason.js';
import { migration009 } from './009-mapping-warnings.js';
import { migration010 } from './010-state-order-index.js';
import { migration011 } from './011-pending-checks.js';
import { migration012 } from './012-in-flight-copy.js';
import { migration013 } from './013-read-by-source.js';
import { migration014 } from './014-ledger-identity.js';
import { migration015 } from './015-opencrvs-locations.js';
import { migration016 } from './016-slow-record-strikes.js';
import { migration017 } from './017-source-fingerprint.js';
import { migration018 } from './018-inbox-body-bytes.js';
import { migration019 } from './019-rejected-copy.js';
import { migration020 } from './020-source-order-index.js';
import { migration021 } from './021-updated-at-index.js';
import { migration022 } from './022-single-call-at.js';
import { migration023 } from './023-context-reads.js';
import { migration024 } from './024-single-call-after.js';
import { migration025 } from './025-queued-after-attempt.js';
import { migration026 } from './026-updated-after-attempt.js';
import { migration027 } from './027-earlier-tracking-ids.js';
import { migration028 } from './028-waiting-queued-index.js';
import { migration029 } from './029-write-back-note.js';
import { migration030 } from './030-unreached-attempts.js';
import { migration031 } from './031-subject-through-natural-key.js';
import { migration032 } from './032-attempt-unreached.js';
import type { Migration } from './types.js';

export type { Migration } from './types.js';

export const MIGRATIONS: readonly Migration[] = [
  migration001,
  migration002,
  migration003,
  migration004,
  migration005,
  migration006,
  migration007,
  migration008,
  migration009,
  migration010,
  migration011,
  migration012,
  migration013,
  migration014,
  migration015,
  migration016,
  migration017,
  migration018,
  migration019,
  migration020,
  migration021,
  migration022,
  migration023,
  migration024,
  migration025,
  migration026,
  migration027,
  migration028,
  migration029,
  migration030,
  migration031,
  migration032,
];
