// A FHIR server that refuses a search whose list is too long with its own 400, an OperationOutcome: a HAPI
// deployment refused an `_id` list of about 35 ids so (opensrp/fhircore#2529), and the Microsoft FHIR server
// answers 400 for too many parameters. The bridge's batched context reads (`Patient?_id=a,b,…`,
// `Encounter?subject=Patient/a,…`) meet it while their lists are long. Such a 400 may be about one value of
// the list, so the list is asked again in halves; before, that was all: each page was refused and halved
// again, page after page and pass after pass. Now a list refused whose halves are both answered names no
// value the server refuses (that value's half would be refused too): its length was, and the half's length
// is kept, so only the first page meets the limit. Against the FHIR sandbox's own list limit, over HTTP.
import { describe, it } from 'node:test';
import { limitMetOnFirstPageOnly } from './helpers/limit-first-page.js';

/**
 * The server's limit on a parameter's values: the halves of a page's lists of 50 (25) are under it, and so
 * is the observation searches' list of codes.
 */
const MAX_VALUES = 30;

describe('FHIR source whose server refuses lists of more than 30 values with a 400 OperationOutcome', () => {
  it('meets the limit on the first page only, and delivers every birth once', () =>
    limitMetOnFirstPageOnly((refused) => ({ listLimit: { maxValues: MAX_VALUES, refused } }), 'search'));
});
