import { gatewayUnauthorized } from './errors.js';
import type { SimTokenClaims, TokenSigner } from './jwt.js';
import type { SimClient, SimClientInput, SimResponse, SimVersion } from './types.js';

/** Registered system clients. Removing or re-registering a client revokes the tokens it already holds. */
export class ClientRegistry {
  readonly #clients = new Map<string, SimClient>();
  /**
   * Per client id, the tokens (`jti`) issued in the latest second any was issued in (their `iat`): the ones a
   * re-registration in that same second revokes. Kept past a removal, so a client removed and added
   * again within one second does not get them back.
   */
  readonly #issuedInSecond = new Map<string, { second: number; tokens: Set<string> }>();

  constructor(
    private readonly seeded: SimClientInput[],
    private readonly defaultScopes: string[],
    private readonly defaultTtlSeconds: number,
  ) {
    this.reset();
  }

  /** Back to the seeded clients; their earlier tokens stay valid (reset is about data, not credentials). */
  reset(): void {
    this.#clients.clear();
    for (const input of this.seeded) this.#clients.set(input.clientId, this.#build(input, 0));
  }

  upsert(input: SimClientInput, nowMs = Date.now()): SimClient {
    const second = Math.floor(nowMs / 1000);
    const issued = this.#issuedInSecond.get(input.clientId);
    const client = this.#build(input, second, issued?.second === second ? new Set(issued.tokens) : undefined);
    this.#clients.set(client.clientId, client);
    return client;
  }

  /** Records a token just issued (its client is `sub`). */
  issued({ sub, iat, jti }: SimTokenClaims): void {
    const latest = this.#issuedInSecond.get(sub);
    if (latest?.second === iat) latest.tokens.add(jti);
    else this.#issuedInSecond.set(sub, { second: iat, tokens: new Set([jti]) });
  }

  remove(clientId: string): boolean {
    return this.#clients.delete(clientId);
  }

  get(clientId: string): SimClient | undefined {
    return this.#clients.get(clientId);
  }

  #build(input: SimClientInput, validFromSeconds: number, revokedInFirstSecond = new Set<string>()): SimClient {
    return {
      clientId: input.clientId,
      clientSecret: input.clientSecret,
      scopes: input.scopes ?? this.defaultScopes,
      tokenTtlSeconds: input.tokenTtlSeconds ?? this.defaultTtlSeconds,
      validFromSeconds,
      revokedInFirstSecond,
    };
  }
}

const ERROR_URI = 'Refer to https://documentation.opencrvs.org/technology/interoperability/authenticate-a-client';
const NO_STORE = { 'Cache-Control': 'no-store' };

function oauthError(status: number, error: string, description: string): SimResponse {
  return { status, body: { error, error_description: description, error_uri: ERROR_URI }, headers: NO_STORE };
}

// The auth service's texts (packages/auth/src/features/oauthToken/responses.ts). 2.0 added the
// token-exchange grant and checks the grant type before the credentials.
const INVALID_REQUEST = 'Invalid request. Check that all required parameters have been provided.';
const GRANT_TEXT: Record<SimVersion, string> = {
  '2.0':
    'Invalid or undefined grant type. Only "client_credentials" or "urn:opencrvs:oauth:grant-type:token-exchange" are supported.',
  '1.9':
    'Invalid grant type. Only "client_credentials" or "urn:opencrvs:oauth:grant-type:token-exchange" are supported.',
};

export interface TokenRequestParams {
  client_id?: string;
  client_secret?: string;
  grant_type?: string;
}

/** `POST /token`: v1.9 reads only the query string; v2.0 also a form or JSON body (query wins). */
export function handleTokenRequest(
  params: TokenRequestParams,
  version: SimVersion,
  clients: ClientRegistry,
  signer: TokenSigner,
): SimResponse {
  const { client_id: clientId, client_secret: secret, grant_type: grant } = params;
  if (version === '2.0') {
    if (grant !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', GRANT_TEXT[version]);
    if (!clientId || !secret) return oauthError(400, 'invalid_request', INVALID_REQUEST);
  } else {
    if (!clientId || !secret || !grant) return oauthError(400, 'invalid_request', INVALID_REQUEST);
    if (grant !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', GRANT_TEXT[version]);
  }
  const client = clients.get(clientId);
  if (!client || client.clientSecret !== secret) {
    return oauthError(401, 'invalid_client', 'Invalid client id or secret');
  }
  const { token: accessToken, claims } = signer.issue(client.clientId, client.scopes, client.tokenTtlSeconds);
  clients.issued(claims);
  return { status: 200, body: { access_token: accessToken, token_type: 'Bearer' }, headers: NO_STORE };
}

export type Authenticated =
  | { ok: true; claims: SimTokenClaims; client: SimClient }
  | { ok: false; response: SimResponse };

/** The gateway's bearer check, with hapi-auth-jwt2's messages. */
export function authenticate(
  authorization: string | undefined,
  clients: ClientRegistry,
  signer: TokenSigner,
): Authenticated {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match?.[1]) return { ok: false, response: gatewayUnauthorized('Missing authentication') };
  const result = signer.verify(match[1]);
  if (!result.ok) {
    const message =
      result.reason === 'expired'
        ? 'Token expired'
        : result.reason === 'malformed'
          ? 'Invalid token format'
          : 'Invalid token';
    return { ok: false, response: gatewayUnauthorized(message) };
  }
  const client = clients.get(result.claims.sub);
  // Revoked precisely though `iat` counts whole seconds: those of the registering second issued before it.
  const { iat, jti } = result.claims;
  if (
    !client ||
    iat < client.validFromSeconds ||
    (iat === client.validFromSeconds && client.revokedInFirstSecond.has(jti))
  ) {
    return { ok: false, response: gatewayUnauthorized('Invalid credentials') };
  }
  return { ok: true, claims: result.claims, client };
}
