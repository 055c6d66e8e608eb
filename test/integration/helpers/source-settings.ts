// A source's settings for a test that builds its client by hand, without a configuration file: the source
// `emr`, no authentication, a poll every minute in pages of 100. A test passes what it varies (the kind,
// the timeout, the mappings, the bound on calls in flight) instead of writing the whole object out again.
import type { SourceSettings } from '../../../src/config/types.js';

export function sourceSettings(baseUrl: string, options: Partial<SourceSettings> = {}): SourceSettings {
  return {
    id: 'emr',
    kind: 'fhir',
    baseUrl,
    auth: { type: 'none' },
    timeoutMs: 5_000,
    poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 30, pageSize: 100 },
    mappings: [],
    ...options,
  };
}
