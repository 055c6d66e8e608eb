// Shared by the configuration tests: the smallest valid file, and the ConfigError a load throws.
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/index.js';

/** The least a configuration needs: OpenCRVS's domain and client credentials. */
export const MINIMAL_CONFIG = `
opencrvs:
  domain: farajaland.example.org
  clientId: bridge
  clientSecret: s3cret
`;

/** The ConfigError `fn` throws; fails the test when it throws nothing, and rethrows anything else. */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}
