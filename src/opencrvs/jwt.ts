// Reads the payload of the OpenCRVS access token. The bridge never verifies the signature (the
// gateway does that on every call); it only needs `exp` to renew in time, since the token response
// carries no `expires_in`, and `scope` for the health check.
import { Ajv } from 'ajv';
import { compileOnFirstUse } from '../util/compile-on-first-use.js';

export interface JwtClaims {
  exp: number;
  iat?: number;
  sub?: string;
  scope?: string[] | string;
  [key: string]: unknown;
}

const validateClaims = compileOnFirstUse(() =>
  new Ajv({ strict: false }).compile<JwtClaims>({
    type: 'object',
    required: ['exp'],
    properties: {
      exp: { type: 'number' },
      iat: { type: 'number' },
      sub: { type: 'string' },
      scope: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    },
  }),
);

/** The decoded payload, or undefined when the text is not a JWT with a numeric `exp`. */
export function readJwtClaims(token: string): JwtClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  return validateClaims(payload) ? payload : undefined;
}

/** `exp` in milliseconds since the epoch, or undefined. */
export function readJwtExpiryMs(token: string): number | undefined {
  const claims = readJwtClaims(token);
  return claims ? claims.exp * 1000 : undefined;
}

/** OpenCRVS puts scopes in an array; OAuth-style space-separated strings are accepted too. */
export function scopesOf(claims: JwtClaims): string[] {
  if (Array.isArray(claims.scope)) return claims.scope;
  if (typeof claims.scope === 'string') return claims.scope.split(' ').filter((s) => s.length > 0);
  return [];
}
