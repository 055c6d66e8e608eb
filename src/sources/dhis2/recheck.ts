import type { Dhis2Settings } from '../../config/types.js';
import { type Resource, trackedEntityResource } from '../../mapping/index.js';
import type { SourcePipeline } from '../pipeline.js';
import type { SubjectRecheck } from '../recheck.js';
import type { Dhis2Client } from './client.js';
import { Dhis2Fetcher } from './fetcher.js';

const TRACKED_ENTITY = 'TrackedEntity/';

/**
 * Reads each tracked entity again (in the source's programme, with its fields). One DHIS2 answers 404
 * for (deleted: the tracker soft-deletes, and a poll by updatedAfter never returns it again) withdraws
 * its unsent row; the others are evaluated again, so a deactivation or a cleared date counts too.
 */
export function dhis2Recheck(deps: {
  client: Dhis2Client;
  pipeline: SourcePipeline;
  dhis2: Dhis2Settings;
}): SubjectRecheck {
  const { client, pipeline, dhis2 } = deps;
  return async (subjectKeys) => {
    const fetcher = pipeline.reading(new Dhis2Fetcher(client, dhis2.fields));
    try {
      const resources: Resource[] = [];
      for (const key of subjectKeys) {
        if (!key.startsWith(TRACKED_ENTITY)) continue;
        const entity = await client.trackedEntity(key.slice(TRACKED_ENTITY.length), {
          program: dhis2.program,
          fields: dhis2.fields,
        });
        const resource = entity ? trackedEntityResource(entity) : undefined;
        if (resource) resources.push(resource);
        else if (!entity) pipeline.recordDeleted(key, fetcher);
      }
      fetcher.prime(resources);
      const { results } = await pipeline.evaluate(resources, fetcher);
      pipeline.commit(results);
    } finally {
      await pipeline.finished(fetcher);
    }
  };
}
