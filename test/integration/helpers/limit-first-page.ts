// The shared run of the batch-limit tests (fhir-url-limit, fhir-list-limit): a FHIR source whose server, or
// a front in front of it, refuses a search past some limit. Two passes of 50 births each (two poll pages of
// 50 Patients apiece, with long batches); the refused requests are counted per poll page. The bridge must
// meet the limit on the first page only (the size that answers is kept), and deliver every birth once.
import assert from 'node:assert/strict';
import type { ListLimit, UrlLimit } from '../../../src/sandbox/fhir/index.js';
import { startHarness } from './bridge-harness.js';

const BIRTHS = 50;

/** What the sandbox saw, in order: each poll page asked (a search sorted by `_lastUpdated`), each refusal. */
type Seen = 'page' | 'refused';

/**
 * Runs the two passes against the sandbox limit `limit` makes from its `refused` counter, and checks them.
 * `what` names the refusals in assertion messages (`URL`, `search`).
 */
export async function limitMetOnFirstPageOnly(
  limit: (refused: () => void) => { urlLimit: UrlLimit } | { listLimit: ListLimit },
  what: string,
): Promise<void> {
  const seen: Seen[] = [];
  const h = await startHarness({
    fhirPaging: {
      ...limit(() => seen.push('refused')),
      beforeSearch: (_type, query) => {
        if (query.get('_sort') === '_lastUpdated' && !query.has('_summary')) seen.push('page');
      },
    },
  });
  try {
    /** The refusals of each poll page since the last call, after a count of those before any page. */
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
      `the limit refused the longest batches: ${firstPages}`,
    );
    // The size that answers is kept from the page that met the limit: no later page is refused again.
    const firstRefusedAt = firstPages.findIndex((n) => n > 0);
    assert.deepEqual(
      firstPages.slice(firstRefusedAt + 1).filter((n) => n > 0),
      [],
      `refused ${what}s per page, first pass: ${firstPages}`,
    );

    await h.writeBirths(BIRTHS, BIRTHS);
    const second = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
    assert.deepEqual(second.failedSources, [], JSON.stringify(second.sourceErrors));
    const secondPages = refusedPerPage();
    assert.ok(secondPages.length >= 3, `several pages: ${secondPages}`);
    assert.deepEqual(
      secondPages.filter((n) => n > 0),
      [],
      `refused ${what}s per page, next pass: ${secondPages}`,
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
    assert.equal((await h.events()).length, 2 * BIRTHS, 'one OpenCRVS event per birth');
  } finally {
    await h.close();
  }
}
