// The OpenMRS REST API of a source with `sources[].openmrs`: what the fetcher asks of it for every newborn
// (openmrs-relationships.ts), asked here of a person that does not exist, so that nothing personal is read
// and nothing is printed but statuses and the REST root. Two calls, because OpenMRS checks the privileges one
// at a time (openmrs-module-webservices.rest, RelationshipSearchHandler1_9; openmrs-core's PersonService):
// - the listing `relationship?person=<uuid>` reads the person first (getPersonByUuid: "Get People"); an
//   unknown one ends the search there, answered 200 with an empty `results` (an EmptySearchResult). So it
//   shows the REST API is there, takes the credentials, and answers JSON; not that it takes the custom
//   representation, which an empty result never applies (a REST module refusing it sets each birth aside);
// - `relationship/<uuid>` reads a relationship by uuid (getRelationshipByUuid: "Get Relationships"); an
//   unknown one is a 404 ("Object with given uuid doesn't exist"), a user without the privilege a 403.
import { randomUUID } from 'node:crypto';
import type { SourceSettings } from '../config/types.js';
import type { FhirSourceClient } from '../sources/fhir/fhir-client.js';
import {
  LISTING_OPERATION,
  LISTING_REPRESENTATION,
  listingUrl,
  parseListing,
} from '../sources/fhir/openmrs-relationships.js';
import { SourceCallError } from '../sources/shared/source-error.js';
import { normalisedUrl } from '../util/url.js';
import { type CheckResult, fail, ok, warn } from './types.js';

function statusOf(err: unknown): number | undefined {
  return err instanceof SourceCallError ? err.status : undefined;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : 'failed';
}

export async function checkOpenmrsRest(client: FhirSourceClient, settings: SourceSettings): Promise<CheckResult> {
  const name = `source ${settings.id} openmrs`;
  const restUrl = settings.openmrs?.restUrl ?? '';
  const where = normalisedUrl(restUrl);
  const key = 'sources[].openmrs.restUrl';
  const person = randomUUID();
  let body: unknown;
  try {
    body = await client.getJson(listingUrl(restUrl, person), LISTING_OPERATION);
  } catch (err) {
    const status = statusOf(err);
    if (status === 401)
      return fail(name, `${where}: HTTP 401: the REST API refused the credentials of sources[].auth of this source`);
    if (status === 403)
      return fail(
        name,
        `${where}: HTTP 403: the OpenMRS user lacks the privilege "Get People" (the listing reads the person first), or a proxy in front of ${key} refused the bridge`,
      );
    if (status === 404)
      return fail(
        name,
        `${where}/relationship answered HTTP 404: no OpenMRS REST relationship resource there (the REST module, openmrs-module-webservices.rest, not installed, or ${key} wrong: …/openmrs/ws/rest/v1)`,
      );
    if (status === 200) return fail(name, `${where}: the answer is no JSON (a login page?): check ${key}`);
    return fail(name, `${where}: the relationship listing failed (${reasonOf(err)})`);
  }
  if (!parseListing(body))
    return fail(name, `${where}: the answer is no relationship listing (no JSON \`results\`): check ${key}`);

  const byUuid = `${restUrl}/relationship/${person}?${new URLSearchParams({ v: LISTING_REPRESENTATION })}`;
  try {
    await client.getJson(byUuid, 'OpenMRS REST relationship read');
  } catch (err) {
    const status = statusOf(err);
    if (status === 401 || status === 403)
      return fail(
        name,
        `${where}: reading a relationship answered HTTP ${status}: the OpenMRS user lacks the privilege "Get Relationships" (each newborn's listing would be refused)`,
      );
    if (status !== 404)
      return warn(
        name,
        `${where}: the listing answers, but reading a relationship by uuid failed (${reasonOf(err)}), so whether the user holds "Get Relationships" is not known`,
      );
  }
  return ok(
    name,
    `${where}: the relationship listing answers JSON with the configured auth, and the user holds "Get People" and "Get Relationships" (asked of a person that does not exist)`,
  );
}
