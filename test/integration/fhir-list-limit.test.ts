// A FHIR server that refuses a search whose list is too long with its own 400, an OperationOutcome: a HAPI
// deployment refused an `_id` list of about 35 ids so (opensrp/fhircore#2529), and the Microsoft FHIR server
// answers 400 for too many parameters. The bridge's batched context reads (`Patient?_id=a,b,…`,
// `Encounter?subject=Patient/a,…`) meet it while their lists are long. Such a 400 may be about one value of
// the list, so the list is asked again in halves; before, that was all: each page was refused and halved
// again, page after page and pass after pass. Now a list refused whose halves are both answered names no
// value the server refuses (that value's half would be refused too): its length was, and the half's length
// is kept, so only the first page meets the limit. Against the FHIR sandbox's own list limit, over HTTP.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ListLimit } from '../../src/sandbox/fhir/index.js';
import { startHarness } from './helpers/bridge-harness.js';

/** Births of a pass: their 100 Patients (child, mother) are two poll pages of 50, each with lists of 50. */
const BIRTHS = 50;
/**
 * The server's limit on a parameter's values: the halves of a page's lists of 50 (25) are under it, and so
 * is the observation searches' list of codes.
 */
const MAX_VALUES = 30;

/** What the sandbox saw, in order: each poll page asked (a search sorted by `_lastUpdated`), each search refused. */
type Seen = 'page' | 'refused';

describe('FHIR source whose server refuses lists of more than 30 values with a 400 OperationOutcome', () => {
  it('meets the limit on the first page only, and delivers every birth once', async () => {
    const seen: Seen[] = [];
    const listLimit: ListLimit = { maxValues: MAX_VALUES, refused: () => seen.push('refused') };
    const h = await startHarness({
      fhirPaging: {
        listLimit,
        beforeSearch: (_type, query) => {
          if (query.get('_sort') === '_lastUpdated' && !query.has('_summary')) seen.push('page');
        },
      },
    });
    try {
      /** The refused searches of each poll page since the last call, after a count of those before any page. */
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
        `the server refused the longest lists: ${firstPages}`,
      );
      // The halves' length is kept from the page that met the limit: no later page is refused again.
      const firstRefusedAt = firstPages.findIndex((n) => n > 0);
      assert.deepEqual(
        firstPages.slice(firstRefusedAt + 1).filter((n) => n > 0),
        [],
        `refused searches per page, first pass: ${firstPages}`,
      );

      await h.writeBirths(BIRTHS, BIRTHS);
      const second = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
      assert.deepEqual(second.failedSources, [], JSON.stringify(second.sourceErrors));
      const secondPages = refusedPerPage();
      assert.ok(secondPages.length >= 3, `several pages: ${secondPages}`);
      assert.deepEqual(
        secondPages.filter((n) => n > 0),
        [],
        `refused searches per page, next pass: ${secondPages}`,
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
