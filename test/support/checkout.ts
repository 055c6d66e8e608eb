// Where the checkout is. scripts/run-tests.mjs runs the tests compiled into a folder of their own
// (scripts/test-build.mjs), where src/ and test/ hold JavaScript and the rest of the checkout is linked; it
// names the checkout in BRIDGE_TEST_CHECKOUT. A test that reads the TypeScript sources, or copies the
// checkout's files, finds them here. Run through tsx (`node --import tsx --test x.test.ts`), this file is
// in the checkout itself.
import { fileURLToPath } from 'node:url';

const named = process.env.BRIDGE_TEST_CHECKOUT?.trim().replace(/\/+$/, '');

/** The checkout's folder, with a trailing separator. */
export const CHECKOUT = named ? `${named}/` : fileURLToPath(new URL('../../', import.meta.url));
