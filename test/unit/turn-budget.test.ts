// The lanes' budget per turn of the event loop (util/turn-budget.ts): tasks resumed in one check phase
// run there only up to the budget, the rest in later turns, with the loop polling I/O between.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnBudget } from '../../src/util/turn-budget.js';

/**
 * Tasks done by the end of each turn: an immediate queued behind the tasks, which queues itself again when
 * it runs, runs last in each check phase that began after it was queued.
 */
function tasksPerTurn(done: () => number, total: number): Promise<number[]> {
  const counts: number[] = [];
  return new Promise((resolve) => {
    const probe = () => {
      counts.push(done() - counts.reduce((sum, n) => sum + n, 0));
      if (done() < total) setImmediate(probe);
      else resolve(counts.filter((n) => n > 0));
    };
    setImmediate(probe);
  });
}

describe('TurnBudget', () => {
  it('runs the tasks resumed in one turn only up to the budget, the rest in later turns, each once', async () => {
    let clock = 0;
    const budget = new TurnBudget(3, () => clock);
    const ran: number[] = [];
    const tasks = Array.from({ length: 10 }, (_, i) =>
      budget.turn().then(() => {
        clock += 1; // each task's work: 1 ms
        ran.push(i);
      }),
    );
    const perTurn = await tasksPerTurn(() => ran.length, tasks.length);
    await Promise.all(tasks);
    // In the order they asked, each once.
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 3 ms of budget, 1 ms a task: three tasks a turn (a bare setImmediate ran all ten in the first).
    assert.deepEqual(perTurn, [3, 3, 3, 1]);
  });

  it('lets one task through in every turn, however long it takes', async () => {
    let clock = 0;
    const budget = new TurnBudget(3, () => clock);
    const ran: number[] = [];
    const tasks = Array.from({ length: 3 }, (_, i) =>
      budget.turn().then(() => {
        clock += 50;
        ran.push(i);
      }),
    );
    const perTurn = await tasksPerTurn(() => ran.length, tasks.length);
    await Promise.all(tasks);
    assert.deepEqual(ran, [0, 1, 2]);
    assert.deepEqual(perTurn, [1, 1, 1]);
  });

  it('lets a task turned away go before the tasks let through meanwhile, not after the whole batch', async () => {
    let clock = 0;
    const budget = new TurnBudget(3, () => clock);
    const queue = Array.from({ length: 24 }, (_, i) => i);
    // Which lane finished each item, in order. A lane takes its item before it waits, as the pipeline's do.
    const finishedBy: number[] = [];
    const lane = async (k: number) => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        await budget.turn();
        clock += 2; // each item's work: 2 ms, so one or two items a turn
        finishedBy.push(k);
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, k) => lane(k)));
    assert.equal(finishedBy.length, 24);
    // Every lane finished its first item before any lane finished its third. Unfair, the two lanes let
    // through in the first turn took every later turn too, and the others' items waited for all 20 of theirs.
    const firstOfEach = Array.from({ length: 6 }, (_, k) => finishedBy.indexOf(k));
    const counts = new Map<number, number>();
    const firstThird = finishedBy.findIndex((k) => {
      counts.set(k, (counts.get(k) ?? 0) + 1);
      return counts.get(k) === 3;
    });
    assert.ok(
      firstOfEach.every((i) => i >= 0 && i < firstThird),
      `first items at ${firstOfEach.join(', ')}; a third item at ${firstThird}`,
    );
  });

  it('pass() goes on in the same turn within the budget, and waits for a later turn past it', async () => {
    let clock = 0;
    const budget = new TurnBudget(3, () => clock);
    const order: string[] = [];
    const later = new Promise<void>((resolve) => setImmediate(resolve)).then(() => order.push('next turn'));
    await budget.pass(); // starts the count for this turn
    order.push('first');
    clock += 2;
    await budget.pass();
    order.push('within');
    clock += 2;
    await budget.pass();
    order.push('past the budget');
    await later;
    assert.deepEqual(order, ['first', 'within', 'next turn', 'past the budget']);
  });
});
