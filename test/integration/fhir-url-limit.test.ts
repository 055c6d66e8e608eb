// A FHIR server behind a Tomcat or an nginx that refuses URLs past its limit with its own HTML page: nginx
// with 414, Tomcat with 400 ("Request header is too large"). The bridge's batched context reads
// (`Patient?_id=a,b,…`, `Encounter?subject=Patient/a,…`) are refused by it while they are long. Before, the
// Tomcat page was taken for the FHIR server's 400 about a value of the list: each page asked its batches in
// halves again, and paid the same refused requests, page after page and pass after pass. Now a 400 that is
// no FHIR answer is a refusal of the length, as nginx's 414 is: the batch is asked smaller and that size
// kept, so only the first page meets the limit. Against the FHIR sandbox's own URL limit, over HTTP.
import { describe, it } from 'node:test';
import { limitMetOnFirstPageOnly } from './helpers/limit-first-page.js';

/**
 * The front's URL limit: one record's search (up to 700 characters: the observation searches name their
 * codes) and lists of 10 records (about 1,000) pass it; the lists of a page's 50 records (1,500 and more)
 * do not.
 */
const MAX_CHARS = 1100;

for (const style of ['tomcat', 'nginx'] as const) {
  describe(`FHIR source behind ${style === 'tomcat' ? 'a Tomcat (400)' : 'an nginx (414)'} that refuses long URLs`, () => {
    it('meets the limit on the first page only, and delivers every birth once', () =>
      limitMetOnFirstPageOnly((refused) => ({ urlLimit: { maxChars: MAX_CHARS, style, refused } }), 'URL'));
  });
}
