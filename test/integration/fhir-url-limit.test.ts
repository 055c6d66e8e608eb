// A FHIR server behind a Tomcat or an nginx that refuses URLs past its limit with its own HTML page: nginx
// with 414, Tomcat with 400 ("Request header is too large"). The bridge's batched context reads
// (`Patient?_id=a,b,…`, `Encounter?subject=Patient/a,…`) are refused by it while they are long. Before, the
// Tomcat page was taken for the FHIR server's 400 about a value of the list: each page asked its batches in
// halves again, and paid the same refused requests, page after page and pass after pass. Now a 400 that is
// no FHIR answer is a refusal of the length, as nginx's 414 is: the batch is asked smaller and that size
// kept, so only the first page meets the limit. Against the FHIR sandbox's own URL limit, over HTTP.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UrlLimit } from '../../src/sandbox/fhir/index.js';
import { startHarness } from './helpers/bridge-harness.js';

/** Births of a pass: their 100 Patients (child, mother) are two poll pages of 50, each with long batches. */
const BIRTHS = 50;
/**
 * The front's URL limit: one record's search (up to 700 characters: the observation searches name their
 * codes) and lists of 10 records (about 1,000) pass it; the lists of a page's 50 records (1,500 and more)
 * do not.
 */
const MAX_CHARS = 1100;

/** What the sandbox saw, in order: each poll page asked (a search sorted by `_lastUpdated`), each URL refused. */
type Seen = 'page' | 'refused';

for (const style of ['tomcat', 'nginx'] as const) {
  describe(`FHIR source behind ${style === 'tomcat' ? 'a Tomcat (400)' : 'an nginx (414)'} that refuses long URLs`, () => {
    it('meets the limit on the first page only, and delivers every birth once', async () => {
      const seen: Seen[] = [];
      const urlLimit: UrlLimit = { maxChars: MAX_CHARS, style, refused: () => seen.push('refused') };
      const h = await startHarness({
        fhirPaging: {
          urlLimit,
          beforeSearch: (_type, query) => {
            if (query.get('_sort') === '_lastUpdated' && !query.has('_summary')) seen.push('page');
          },
        },
      });
      try {
        /** The refused requests of each poll page since the last call, after a count of those before any page. */
        const refusedPerPage = () => {
          const pages: number[] = [0];
          for (const s of seen.splice(0)) {
            if (s === 'page') pages.push(0);
            else pages[pages.length - 1] = (pages.at(-1) ?? 0) + 1;
          }
          return pages;
        };

        await h.writeBirths(0, BIRTHS);
        const first = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
        assert.deepEqual(first.failedSources, [], JSON.stringify(first.sourceErrors));
        const firstPages = refusedPerPage();
        assert.ok(firstPages.length >= 3, `several pages: ${firstPages}`);
        assert.ok(
          firstPages.some((n) => n > 0),
          `the front refused the longest batches: ${firstPages}`,
        );
        // The batches' size is kept from the page that met the limit: no later page is refused again.
        const firstRefusedAt = firstPages.findIndex((n) => n > 0);
        assert.deepEqual(
          firstPages.slice(firstRefusedAt + 1).filter((n) => n > 0),
          [],
          `refused requests per page, first pass: ${firstPages}`,
        );

        await h.writeBirths(BIRTHS, BIRTHS);
        const second = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
        assert.deepEqual(second.failedSources, [], JSON.stringify(second.sourceErrors));
        const secondPages = refusedPerPage();
        assert.ok(secondPages.length >= 3, `several pages: ${secondPages}`);
        assert.deepEqual(
          secondPages.filter((n) => n > 0),
          [],
          `refused requests per page, next pass: ${secondPages}`,
        );

        await h.waitFor(
          'every birth delivered',
          () => h.rows().filter((r) => r.state === 'delivered').length === 2 * BIRTHS,
        );
        const rows = h.rows();
        assert.equal(rows.length, 2 * BIRTHS, 'one ledger row per birth');
        assert.equal(new Set(rows.map((r) => r.subjectKey)).size, 2 * BIRTHS, 'every birth has its row');
        assert.deepEqual(
          rows.filter((r) => r.state !== 'delivered').map((r) => [r.subjectKey, r.state]),
          [],
        );
        const events = await h.events();
        assert.equal(events.length, 2 * BIRTHS, 'one OpenCRVS event per birth');
      } finally {
        await h.close();
      }
    });
  });
}
