// Time put forward rather than waited out, for the slow-record rule (SourcePipeline.slowRecords), which
// spaces a record's strikes minutes apart: by the monotonic clock within a process, and by the wall clock,
// which the ledger keeps, across processes. Both move together, as when time passes; mock.restoreAll()
// puts them back.
import { mock } from 'node:test';

export function movableClocks(): { advance(ms: number): void } {
  const realNow = performance.now.bind(performance);
  const realDateNow = Date.now.bind(Date);
  let ahead = 0;
  mock.method(performance, 'now', () => realNow() + ahead);
  mock.method(Date, 'now', () => realDateNow() + ahead);
  return {
    advance: (ms) => {
      ahead += ms;
    },
  };
}
