// The test every reader of parsed JSON makes before it looks inside a value: a plain object, not null and
// not an array (FHIR resources, DHIS2 payloads, OpenCRVS form configurations are all read as unknown).

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
