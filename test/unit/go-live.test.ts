// The go-live's date and what is dated before it (sources/go-live.ts): dates of events are local, so the
// boundary is the go-live's date where the source is, and a partial date counts when wholly before it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { beforeGoLive, goLiveDate, undatedDeath } from '../../src/sources/go-live.js';

describe('goLiveDate', () => {
  it("is an instant's date in the source's zone, and a date or local date-time as written", () => {
    // The start sinceDays chose, written in UTC: already the 1st in Lusaka (UTC+2), still the 31st in Lima.
    assert.equal(goLiveDate('2024-12-31T23:30:00.000Z', 'Africa/Lusaka'), '2025-01-01');
    assert.equal(goLiveDate('2025-01-01T03:00:00Z', 'America/Lima'), '2024-12-31');
    assert.equal(goLiveDate('2025-01-01T00:30:00+03:00', 'Africa/Lusaka'), '2024-12-31');
    assert.equal(goLiveDate('2024-12-31T23:30:00.000Z'), '2024-12-31', 'no zone: as written');
    assert.equal(goLiveDate('2025-01-01', 'America/Lima'), '2025-01-01');
    assert.equal(goLiveDate('2025-01-01T00:00:00.000', 'America/Lima'), '2025-01-01', 'DHIS2: a local time');
    assert.equal(goLiveDate(undefined, 'Africa/Lusaka'), undefined);
  });
});

describe('beforeGoLive', () => {
  const birth = (eventDate: string) => beforeGoLive({ eventType: 'birth', eventDate }, '2025-01-01');
  it('counts a year-month before the go-live month, a year before its year; not one that may be after', () => {
    assert.ok(birth('2024-12'));
    assert.ok(birth('2024'));
    assert.equal(birth('2025-01'), undefined);
    assert.equal(birth('2025'), undefined);
    assert.ok(birth('2024-12-31'));
    assert.equal(birth('2025-01-01'), undefined);
  });

  it('leaves an undated death to undatedDeath, which needs a go-live', () => {
    assert.equal(beforeGoLive({ eventType: 'death' }, '2025-01-01'), undefined);
    assert.match(undatedDeath({ eventType: 'death' }, '2025-01-01') ?? '', /^no date of death: /);
    assert.equal(undatedDeath({ eventType: 'death' }, undefined), undefined);
    assert.equal(undatedDeath({ eventType: 'birth' }, '2025-01-01'), undefined);
  });
});
