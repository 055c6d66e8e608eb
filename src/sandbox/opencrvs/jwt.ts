import { generateKeyPairSync, type KeyObject, randomBytes, randomUUID, sign, verify } from 'node:crypto';

// RS256 tokens shaped like OpenCRVS's auth service issues them (docs/opencrvs-api.md, "Token"). Tokens do not
// survive a restart, as with a re-keyed deployment: each simulator start signs under a key id (`kid`) of its own
// and refuses any other as a bad signature. The RSA key pair behind it is made once per process: generating one
// costs about 0.2 s of CPU, more on a loaded machine, and the test suite starts hundreds of simulators.
// One claim is the simulator's own: `jti`, which tells apart two tokens of one client issued within one
// second (alike to the byte otherwise), so a re-registration revokes exactly those issued before it
// (auth.ts). The bridge reads no claim it does not know.

export interface SimTokenClaims {
  iss: string;
  aud: string[];
  sub: string;
  userType: 'system';
  scope: string[];
  iat: number;
  exp: number;
  jti: string;
}

export const TOKEN_ISSUER = 'opencrvs:auth-service';
export const TOKEN_AUDIENCE = ['opencrvs:gateway-user', 'opencrvs:events-user'];

export type VerifyResult =
  | { ok: true; claims: SimTokenClaims }
  | { ok: false; reason: 'malformed' | 'signature' | 'expired' };

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((item) => typeof item === 'string');
}

function readClaims(payload: unknown): SimTokenClaims | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const p = payload as Record<string, unknown>;
  const { iss, sub, iat, exp, aud, scope, jti } = p;
  if (typeof iss !== 'string' || typeof sub !== 'string' || typeof iat !== 'number' || typeof exp !== 'number') {
    return undefined;
  }
  if (!isStringArray(aud) || !isStringArray(scope) || typeof jti !== 'string') return undefined;
  return { iss, aud, sub, userType: 'system', scope, iat, exp, jti };
}

let keyPair: { privateKey: KeyObject; publicKey: KeyObject } | undefined;

export class TokenSigner {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  /** This start's key id: a token under another (an earlier start's) is refused as a bad signature. */
  readonly #kid = randomBytes(12).toString('base64url');

  constructor() {
    keyPair ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.#privateKey = keyPair.privateKey;
    this.#publicKey = keyPair.publicKey;
  }

  issue(
    clientId: string,
    scope: string[],
    ttlSeconds: number,
    nowMs = Date.now(),
  ): { token: string; claims: SimTokenClaims } {
    const iat = Math.floor(nowMs / 1000);
    const claims: SimTokenClaims = {
      iss: TOKEN_ISSUER,
      aud: TOKEN_AUDIENCE,
      sub: clientId,
      userType: 'system',
      scope,
      iat,
      exp: iat + ttlSeconds,
      jti: randomUUID(),
    };
    const signingInput = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: this.#kid }))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), this.#privateKey);
    return { token: `${signingInput}.${signature.toString('base64url')}`, claims };
  }

  verify(token: string, nowMs = Date.now()): VerifyResult {
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, reason: 'malformed' };
    const [header, payload, signature] = parts as [string, string, string];
    let claims: SimTokenClaims | undefined;
    let kid: unknown;
    try {
      const head: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
      if (typeof head !== 'object' || head === null || (head as { alg?: unknown }).alg !== 'RS256') {
        return { ok: false, reason: 'malformed' };
      }
      kid = (head as { kid?: unknown }).kid;
      claims = readClaims(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (!claims) return { ok: false, reason: 'malformed' };
    const valid = verify(
      'RSA-SHA256',
      Buffer.from(`${header}.${payload}`),
      this.#publicKey,
      Buffer.from(signature, 'base64url'),
    );
    if (!valid || kid !== this.#kid) return { ok: false, reason: 'signature' };
    if (claims.exp <= Math.floor(nowMs / 1000)) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  }
}
