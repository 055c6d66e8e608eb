import assert from 'node:assert/strict';

/** The error `call` fails with, asserted to be a `type` (a call that answers fails the test, saying what). */
export async function rejection<E extends Error>(
  call: Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  const err = await call.then(
    (answer) => assert.fail(`answered: ${JSON.stringify(answer)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof type, String(err));
  return err;
}
