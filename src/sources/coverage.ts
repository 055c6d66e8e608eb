// What each subject's evaluation saw during one poll pass, so that a resource met again later in the
// pass does not re-evaluate a subject whose context already held that very version.
//
// A birth is half a dozen resources of four types; a pass pages through each type in turn, and every
// page names the child again (its encounter, its weight, itself, its mother's RelatedPerson). Mapping it
// four times with the same context gives the same answer four times. Skipping is sound because the
// decision is per (resource version, subject): a resource the evaluation did not see, or saw at another
// version, still re-evaluates the subject; and a change to any other context resource arrives as its
// own changed resource, so it is judged on its own.
import { createHash } from 'node:crypto';
import type { Resource, ResourceFetcher } from '../mapping/index.js';
import { setBounded } from '../util/bounded-map.js';

/**
 * `Type/id/version`: the version id when the server gives one, else `meta.lastUpdated`. Where the version
 * id is no more than a time (missing, or OpenMRS's: the changed time in ms, stored to the second), two
 * saves in one second share it, and the second one (the birth date added to a just-registered child)
 * would pass for the first: a hash of the content tells them apart.
 */
export function versionKey(resource: Resource): string {
  let key = keys.get(resource);
  if (key === undefined) {
    key = keyOf(resource);
    keys.set(resource, key);
  }
  return key;
}

// One key per resource object (read as the server sent it, never changed): a pass asks for the same
// resource's key several times, for each subject it may concern and each subject's context that holds it.
const keys = new WeakMap<Resource, string>();

function keyOf(resource: Resource): string {
  const { versionId, lastUpdated } = resource.meta ?? {};
  const key = `${resource.resourceType}/${resource.id}/${versionId ?? lastUpdated ?? ''}`;
  const timeOnly =
    versionId === undefined || (lastUpdated !== undefined && versionId === String(Date.parse(lastUpdated)));
  return timeOnly ? `${key}#${contentHash(resource)}` : key;
}

function contentHash(resource: Resource): string {
  return createHash('sha1').update(JSON.stringify(resource)).digest('base64url').slice(0, 16);
}

// Subjects remembered per pass. A subject's entry holds a few keys (its context), so 50,000 subjects
// stay within tens of MB; beyond that the oldest are forgotten, which only costs a re-evaluation.
// `Type/id` never contains a third slash, so it cannot collide with a version key in the same set.
const idKey = (resource: Resource) => `${resource.resourceType}/${resource.id}`;

const DEFAULT_MAX_SUBJECTS = 50_000;

export class PassCoverage {
  private readonly bySubject = new Map<string, Set<string>>();

  constructor(private readonly maxSubjects = DEFAULT_MAX_SUBJECTS) {}

  /**
   * True when evaluating `subjectKey` again for `resource` cannot change its result: its evaluation in
   * this pass saw this very version, or the resource cannot be in its context (`searchable` false,
   * see MappingSet.subjectsFor) and no version of it was there either. Without an evaluation in this
   * pass nothing is known: an earlier pass may have mapped an older version that was in the context.
   */
  covers(subjectKey: string, resource: Resource, searchable = true): boolean {
    const seen = this.bySubject.get(subjectKey);
    if (!seen) return false;
    if (seen.has(versionKey(resource))) return true;
    return !searchable && !seen.has(idKey(resource));
  }

  /** A fetcher that notes every resource it hands out as seen by `subjectKey`'s evaluation. */
  recording(subjectKey: string, fetcher: ResourceFetcher): { fetcher: ResourceFetcher; done: () => void } {
    const seen = new Set<string>();
    const note = (resource: Resource | undefined) => {
      if (!resource?.resourceType || !resource.id) return;
      seen.add(versionKey(resource));
      seen.add(idKey(resource));
    };
    return {
      fetcher: {
        read: async (type, id) => {
          const found = await fetcher.read(type, id);
          note(found);
          return found;
        },
        search: async (type, params) => {
          const found = await fetcher.search(type, params);
          for (const resource of found) note(resource);
          return found;
        },
        resolveAbsolute: (ref) => fetcher.resolveAbsolute?.(ref),
        otherServerHint: fetcher.otherServerHint,
      },
      // Called only after the evaluation succeeded: a failed one must not vouch for anything.
      done: () => this.remember(subjectKey, seen),
    };
  }

  get size(): number {
    return this.bySubject.size;
  }

  private remember(subjectKey: string, seen: Set<string>): void {
    setBounded(this.bySubject, subjectKey, seen, this.maxSubjects);
  }
}
