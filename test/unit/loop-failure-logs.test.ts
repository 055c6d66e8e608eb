// RepeatedFailure (src/observability/repeated-failure.ts): what a loop failing every round logs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { RepeatedFailure } from '../../src/observability/repeated-failure.js';

type Line = Record<string, unknown> & { msg: string };

describe('RepeatedFailure', () => {
  it('keeps the stack of an unexpected error, and logs another kind of failure at once', () => {
    const lines: Line[] = [];
    let now = 0;
    const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const failures = new RepeatedFailure(log, 'tick failed', { level: 'error', now: () => now });
    const bug = () => new TypeError("Cannot read properties of undefined (reading 'id')");
    failures.failed(bug());
    failures.failed(bug());
    failures.failed(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
    failures.failed(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
    now += 60_000;
    failures.failed(bug());
    assert.deepEqual(
      lines.map((l) => [(l.err as { type?: string }).type, typeof (l.err as { stack?: string }).stack, l.repeats]),
      [
        ['TypeError', 'string', undefined],
        ['Error', 'undefined', undefined],
        ['TypeError', 'string', 1],
      ],
    );
    failures.recovered('ticks run again');
    failures.recovered('ticks run again');
    assert.deepEqual(
      lines.slice(3).map((l) => [l.msg, l.failures, l.repeats, l.failingMs]),
      [['ticks run again', 5, 1, 60_000]],
    );
  });

  it('never logs a personal value a failure carries: the logger redacts it as always', () => {
    const lines: string[] = [];
    const log = createLogger({ destination: { write: (line: string) => lines.push(line) } });
    const failures = new RepeatedFailure(log, 'tick failed', { level: 'warn' });
    failures.failed(Object.assign(new Error('write failed'), { code: 'SQLITE_IOERR_WRITE' }), {
      patient: { birthDate: '2024-01-02', name: 'Jane Roe' },
    });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0] ?? '', /2024-01-02|Jane Roe/);
  });
});
