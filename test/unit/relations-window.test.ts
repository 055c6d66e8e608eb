// The relationships a pass holds for OpenMRS newborns (relations-window.ts): which ranges it asks, and that
// the bound is a birth's (the relationships since its day), not a range's, whatever order births come in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { type ListRange, RelationsWindow } from '../../src/sources/fhir/relations-window.js';

/** `n` relationships recorded on `day`. */
const recorded = (day: string, n: number): Resource[] =>
  Array.from({ length: n }, (_, i) => ({ resourceType: 'RelatedPerson', id: `${day}-${i}`, patient: {} }));

/** A server holding `perDay` relationships recorded on each day, and the ranges asked of it. */
function server(perDay: Record<string, number>) {
  const asked: Array<[string, string | undefined, number]> = [];
  const list: ListRange = async (from, before, budget) => {
    asked.push([from, before, budget]);
    const days = Object.keys(perDay).filter((day) => day >= from && (before === undefined || day < before));
    const resources = days.flatMap((day) => recorded(day, perDay[day] ?? 0));
    return { resources: resources.slice(0, Math.max(budget, 1)), complete: resources.length <= Math.max(budget, 1) };
  };
  return { asked, list };
}

const ids = (answer: unknown) => (Array.isArray(answer) ? answer.map((r: Resource) => r.id).sort() : answer);

describe('relationships a pass holds for newborns', () => {
  it('asks each older birth only the range up to the day the held listing starts', async () => {
    const { asked, list } = server({ '2026-03-01': 2, '2026-03-05': 1, '2026-03-09': 1 });
    const window = new RelationsWindow(list, 10);
    assert.deepEqual(ids(await window.from('2026-03-09')), ['2026-03-09-0']);
    assert.deepEqual(ids(await window.from('2026-03-08')), ['2026-03-09-0']);
    assert.deepEqual(ids(await window.from('2026-03-01')), [
      '2026-03-01-0',
      '2026-03-01-1',
      '2026-03-05-0',
      '2026-03-09-0',
    ]);
    assert.deepEqual(ids(await window.from('2026-03-05')), [
      '2026-03-01-0',
      '2026-03-01-1',
      '2026-03-05-0',
      '2026-03-09-0',
    ]);
    // The budget left for a range: the bound less what is held.
    assert.deepEqual(asked, [
      ['2026-03-09', undefined, 10],
      ['2026-03-08', '2026-03-09', 9],
      ['2026-03-01', '2026-03-08', 9],
    ]);
  });

  it('holds a birth to the bound of the relationships since its day, however many ranges they were read in', async () => {
    const { asked, list } = server({ '2026-03-01': 4, '2026-03-05': 4, '2026-03-09': 4 });
    const window = new RelationsWindow(list, 10);
    assert.equal((await window.from('2026-03-09')).length, 4);
    assert.equal((await window.from('2026-03-05')).length, 8);
    // 4 more fit a range, but not the 8 held beside them: 12 since that day, past the bound of 10.
    assert.equal(await window.from('2026-03-01'), 'past bound');
    // An older birth's are more still: not asked.
    assert.equal(await window.from('2026-02-20'), 'past bound');
    // A later one's are held as before.
    assert.equal((await window.from('2026-03-06')).length, 8);
    assert.equal(asked.length, 3);
  });

  it('serves births waiting side by side from one range, from the earliest day, and asks again after a failed one', async () => {
    let fail = true;
    const { asked, list } = server({ '2026-03-02': 1, '2026-03-07': 1 });
    const window = new RelationsWindow(async (from, before, budget) => {
      if (fail) {
        fail = false;
        throw new Error('503');
      }
      return list(from, before, budget);
    }, 10);
    await assert.rejects(window.from('2026-03-07'), /503/);
    const side = await Promise.all([window.from('2026-03-07'), window.from('2026-03-07'), window.from('2026-03-02')]);
    assert.deepEqual(
      side.map((answer) => (Array.isArray(answer) ? answer.length : answer)),
      [2, 2, 2], // what is held: the caller keeps its child's
    );
    // The first in turn asks from the earliest day waited for: one range for the three.
    assert.deepEqual(asked, [['2026-03-02', undefined, 10]]);
  });

  it('fails the births waiting once the narrowest range fails too, rather than ask it again for each', async () => {
    const asked: string[] = [];
    const window = new RelationsWindow(async (from) => {
      asked.push(from);
      throw new Error('timed out');
    }, 10);
    const side = await Promise.allSettled([
      window.from('2026-03-07'),
      window.from('2026-03-05'),
      window.from('2026-03-02'),
    ]);
    assert.deepEqual(
      side.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    // The widest range, then the narrowest (the latest day waiting): every birth's own range holds it.
    assert.deepEqual(asked, ['2026-03-02', '2026-03-07']);
    // A birth that comes later asks again.
    await assert.rejects(window.from('2026-03-07'), /timed out/);
    assert.equal(asked.length, 3);
  });

  it('serves a later birth whose own range reads well when a range asked for an older one beside it fails', async () => {
    // The server fails any range holding 2026-01-10 (a relationship it cannot give, say): only the oldest
    // birth's own range holds that day.
    const { asked, list } = server({ '2026-01-10': 1, '2026-11-21': 1, '2026-11-24': 1 });
    const window = new RelationsWindow(async (from, before, budget) => {
      if (from <= '2026-01-10' && (before === undefined || before > '2026-01-10')) throw new Error('HTTP 500');
      return list(from, before, budget);
    }, 10);
    const side = await Promise.allSettled([
      window.from('2026-11-23'),
      window.from('2026-11-20'),
      window.from('2025-12-20'),
    ]);
    assert.deepEqual(
      side.map((r) => (r.status === 'fulfilled' ? ids(r.value) : String(r.reason))),
      [['2026-11-24-0'], ['2026-11-21-0', '2026-11-24-0'], 'Error: HTTP 500'],
    );
    // Only the ranges that read well reach the server here.
    assert.deepEqual(asked, [
      ['2026-11-23', undefined, 10],
      ['2026-11-20', '2026-11-23', 9],
    ]);
  });

  it("asks a later birth's own range when the one for the earliest waiting runs past the bound", async () => {
    const { asked, list } = server({ '2026-03-01': 8, '2026-03-05': 1, '2026-03-09': 1 });
    const window = new RelationsWindow(list, 5);
    const side = await Promise.all([window.from('2026-03-09'), window.from('2026-03-01'), window.from('2026-03-05')]);
    assert.deepEqual(
      side.map((answer) => (Array.isArray(answer) ? answer.length : answer)),
      [2, 'past bound', 2],
    );
    assert.deepEqual(asked, [
      ['2026-03-01', undefined, 5],
      ['2026-03-05', undefined, 5],
    ]);
  });
});
