/**
 * Bearer-token authentication with jose: HS256 tokens signed with AUTH_JWT_SECRET, or RS256/ES256 tokens whose
 * keys are published at AUTH_JWKS_URL; `iss` and `aud` checked when configured. The token's `sub` becomes the
 * actor; its scopes (`scope` or `scp`) decide whether it may write.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

/** The scope a token needs to run mutations. */
export const WRITE_SCOPE = 'tasks:write';

/** Who is calling. */
export interface Principal {
  /** The token's `sub`; recorded as `createdBy` and as every event's `actor`. */
  readonly subject: string;
  readonly scopes: ReadonlySet<string>;
  readonly canWrite: boolean;
  /**
   * When the token expires (its `exp`, in milliseconds since the epoch); undefined for a token without `exp`. A
   * WebSocket connection is closed then, since it is authenticated once (HTTP verifies the token on every request).
   */
  readonly expiresAt?: number;
}

function scopesOf(payload: JWTPayload): Set<string> {
  const raw = payload.scope ?? payload.scp;
  if (typeof raw === 'string') return new Set(raw.split(/\s+/).filter(Boolean));
  if (Array.isArray(raw)) return new Set(raw.filter((s): s is string => typeof s === 'string'));
  return new Set();
}

function unauthenticated(message: string): AppError {
  return new AppError('UNAUTHENTICATED', message, {}, { status: 401 });
}

export class Authenticator {
  private readonly key: Uint8Array | JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly auth: NonNullable<Config['auth']>) {
    if (auth.secret) {
      this.key = new TextEncoder().encode(auth.secret);
      this.algorithms = ['HS256'];
    } else {
      // jose caches the key set and refetches it (rate-limited) when a token names an unknown key id.
      this.key = createRemoteJWKSet(new URL(auth.jwksUrl as string), { timeoutDuration: 5000 });
      this.algorithms = ['RS256', 'ES256'];
    }
  }

  /**
   * Verifies the `Authorization` header.
   *
   * @throws AppError UNAUTHENTICATED (HTTP 401) when the header is missing, malformed, or the token does not verify.
   */
  async authenticate(header: string | undefined): Promise<Principal> {
    const match = header?.match(/^Bearer\s+([A-Za-z0-9_.-]+)$/i);
    if (!match?.[1]) throw unauthenticated('Send a bearer token: Authorization: Bearer <JWT>');
    let payload: JWTPayload;
    try {
      const options = {
        algorithms: this.algorithms,
        ...(this.auth.issuer ? { issuer: this.auth.issuer } : {}),
        ...(this.auth.audience ? { audience: this.auth.audience } : {}),
      };
      ({ payload } =
        this.key instanceof Uint8Array ? await jwtVerify(match[1], this.key, options) : await jwtVerify(match[1], this.key, options));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthenticated('The token has expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw unauthenticated(`The token's ${err.claim} claim is not accepted`);
      throw unauthenticated('The token is not valid');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255) {
      throw unauthenticated('The token has no subject (sub)');
    }
    const scopes = scopesOf(payload);
    // jose has checked that a present `exp` is a number and still ahead.
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    return { subject: payload.sub, scopes, canWrite: scopes.has(WRITE_SCOPE), expiresAt };
  }
}
