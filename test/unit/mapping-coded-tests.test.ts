// What each coded() test of a mapping is applied to, followed back to the subject: the DHIS2 programme and
// stage checks judge only the tests on the subject's own enrollments (sources/dhis2/mapping-codes.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { codedTests, triggerSets } from '../../src/mapping/coded-tests.js';

const expr = (text: string) => ({ text });
const paths = (...texts: string[]) =>
  codedTests({
    context: [
      { name: 'enrollment', kind: 'value', exprs: [expr("%subject.enrollments.where(program.coded('p')).first()")] },
      { name: 'mother', kind: 'read', exprs: [expr('%subject.relationships.select(to.trackedEntity.trackedEntity)')] },
      { name: 'either', kind: 'value', exprs: [expr('%enrollment'), expr('%mother.enrollments.first()')] },
    ],
    expressions: texts.map(expr),
  }).map((t) => `${t.set}:${t.path?.join('.') ?? '?'}`);

describe('coded() tests followed back to the subject', () => {
  it("finds the subject's enrollments through where(), first() and context variables", () => {
    assert.deepEqual(paths("%subject.enrollments.where(program.coded('a') and $this.program.coded('b'))"), [
      'a:enrollments.program',
      'b:enrollments.program',
    ]);
    assert.deepEqual(paths("%enrollment.events.where(programStage.coded('s')).first()"), [
      's:enrollments.events.programStage',
    ]);
    // An expression is evaluated on the subject: a path with no variable starts there.
    assert.deepEqual(paths("enrollments.exists(program.coded('r'))"), ['r:enrollments.program']);
  });

  it('gives no path where the items are not surely the subject’s', () => {
    assert.deepEqual(paths("%mother.enrollments.where(program.coded('m'))"), ['m:?']);
    assert.deepEqual(paths("(%subject.enrollments | %mother.enrollments).where(program.coded('u'))"), ['u:?']);
    assert.deepEqual(paths("%subject.enrollments.select(program).where($this.coded('x'))"), ['x:?']);
    // A variable whose fallbacks are the subject's enrollment or the mother's: either one.
    assert.deepEqual(paths("%either.where(program.coded('e'))"), ['e:?']);
  });

  it('counts for the trigger only the tests every alternative depends on', () => {
    const mapping = (when: string[], fallback = "%subject.enrollments.where(program.coded('b'))") => ({
      context: [
        { name: 'enrollment', kind: 'value', exprs: [expr("%subject.enrollments.where(program.coded('a'))")] },
        { name: 'either', kind: 'value', exprs: [expr('%enrollment'), expr(fallback)] },
      ],
      when: when.map((text) => ({ expr: expr(text) })),
    });
    const program = (m: ReturnType<typeof mapping>) => triggerSets(m, 'enrollments.program');
    assert.deepEqual(program(mapping(['%enrollment.exists()'])), ['a']);
    assert.deepEqual(program(mapping(['%either.exists()'])), ['a', 'b']);
    // A fallback without the test, or an alternative without it: the mapping can trigger on any programme.
    assert.equal(program(mapping(['%either.exists()'], '%subject.enrollments')), undefined);
    assert.equal(program(mapping(['%enrollment.exists()', '%subject.enrollments.exists()'])), undefined);
  });
});
