// The DHIS2 context fetcher's per-pass cache: the entities of a poll page are primed (a mapping reading
// one costs no call), and the cache stays bounded however many pages a pass primes (an adversarial
// review measured 164 MB of heap for 30,000 entities kept to the end of one pass).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '../../src/mapping/index.js';
import type { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { Dhis2Fetcher, MAX_CACHED } from '../../src/sources/dhis2/fetcher.js';

/** A client that counts tracked-entity reads (the only call a fetcher makes) and answers each. */
function countingClient(): { client: Dhis2Client; reads: string[] } {
  const reads: string[] = [];
  const client = {
    async trackedEntity(uid: string) {
      reads.push(uid);
      return { trackedEntity: uid, attributes: [] };
    },
  } as unknown as Dhis2Client;
  return { client, reads };
}

const entity = (n: number): Resource => ({ resourceType: 'TrackedEntity', id: `te${n}` }) as Resource;

describe('DHIS2 fetcher cache', () => {
  it('answers a primed entity without a call', async () => {
    const { client, reads } = countingClient();
    const fetcher = new Dhis2Fetcher(client, '*');
    fetcher.prime([entity(1), entity(2)]);
    assert.equal((await fetcher.read('TrackedEntity', 'te2'))?.id, 'te2');
    assert.deepEqual(reads, []);
  });

  it('keeps at most MAX_CACHED primed entities: the oldest go first, the newest stay', async () => {
    const { client, reads } = countingClient();
    const fetcher = new Dhis2Fetcher(client, '*');
    const pages = 3;
    const perPage = Math.ceil(MAX_CACHED / 2);
    for (let page = 0; page < pages; page++) {
      fetcher.prime(Array.from({ length: perPage }, (_, i) => entity(page * perPage + i)));
    }
    const newest = pages * perPage - 1;
    await fetcher.read('TrackedEntity', `te${newest}`);
    await fetcher.read('TrackedEntity', `te${newest - MAX_CACHED + 1}`);
    assert.deepEqual(reads, [], 'the last MAX_CACHED primed entities are cached');
    await fetcher.read('TrackedEntity', 'te0');
    assert.deepEqual(reads, ['te0'], 'the first page was let go');
  });

  it('a related entity read after a full cache keeps the page being mapped', async () => {
    const { client, reads } = countingClient();
    const fetcher = new Dhis2Fetcher(client, '*');
    fetcher.prime(Array.from({ length: MAX_CACHED }, (_, i) => entity(i)));
    await fetcher.read('TrackedEntity', 'mother-1');
    // Clearing the whole cache when full (as reads did) would read the page's entities again.
    await fetcher.read('TrackedEntity', `te${MAX_CACHED - 1}`);
    assert.deepEqual(reads, ['mother-1']);
  });
});
