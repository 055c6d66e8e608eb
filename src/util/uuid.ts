// OpenCRVS names its locations by UUID; a configuration or a record may name one instead by the country's
// CSV id (externalId). Any version and case: OpenCRVS deployments have generated both.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` is written as a UUID (8-4-4-4-12 hex digits), as OpenCRVS location ids are. */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}
