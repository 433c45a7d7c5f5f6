/**
 * Waitpoint tokens: a signed, expiring right to deliver one event to one instance.
 *
 *   wp1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "wp1." + claims part))>
 *
 * Claims: w (instance id), e (event name), n (random nonce: the token's identity, used once),
 * i (issued at, ms), x (expires at, ms). Pure: the caller passes the clock and the nonce; nothing
 * here reads either, logs, or touches the database. Verification tries the current secret and each
 * previous one (rotation), comparing signatures in constant time, and parses the claims only once a
 * signature matched.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { BatonConfig } from '../config.ts';
import { ConfigError, ValidationError, WaitpointTokenError } from '../errors.ts';
import { parseDuration } from './duration.ts';
import { validateEventName, validateId } from './names.ts';

export interface WaitpointClaims {
  workflowId: string;
  event: string;
  nonce: string;
  issuedAt: number;
  expiresAt: number;
}

const PREFIX = 'wp1';
const MAX_TOKEN_LENGTH = 4096;
const PART = /^[A-Za-z0-9_-]+$/;

function sign(secret: string, body: string): Buffer {
  return createHmac('sha256', secret).update(`${PREFIX}.${body}`).digest();
}

export function signWaitpoint(secret: string, claims: WaitpointClaims): string {
  const body = Buffer.from(JSON.stringify({ w: claims.workflowId, e: claims.event, n: claims.nonce, i: claims.issuedAt, x: claims.expiresAt })).toString('base64url');
  return `${PREFIX}.${body}.${sign(secret, body).toString('base64url')}`;
}

const malformed = () => new WaitpointTokenError('malformed', 'the waitpoint token is malformed (not a token Baton made)');

/** The claims of a token signed with one of `secrets` (current first), or a WaitpointTokenError. */
export function verifyWaitpoint(token: unknown, secrets: readonly string[], now: number): WaitpointClaims {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw malformed();
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX || !PART.test(parts[1]!) || !PART.test(parts[2]!)) throw malformed();
  const [, body, signature] = parts as [string, string, string];
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== 32) throw malformed();
  // Every secret is tried (no early exit), so the time taken does not say which one matched.
  let valid = false;
  for (const secret of secrets) valid = timingSafeEqual(sign(secret, body), given) || valid;
  if (!valid) throw new WaitpointTokenError('forged', 'the waitpoint token was not signed with this deployment\'s secret (forged, altered, or signed with a secret no longer configured)');
  let raw: { w?: unknown; e?: unknown; n?: unknown; i?: unknown; x?: unknown };
  try {
    raw = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof raw;
  } catch {
    throw malformed();
  }
  if (
    raw === null || typeof raw !== 'object' ||
    typeof raw.w !== 'string' || typeof raw.e !== 'string' || typeof raw.n !== 'string' ||
    !Number.isSafeInteger(raw.i) || !Number.isSafeInteger(raw.x)
  ) {
    throw malformed();
  }
  const claims: WaitpointClaims = { workflowId: raw.w, event: raw.e, nonce: raw.n, issuedAt: raw.i as number, expiresAt: raw.x as number };
  if (claims.expiresAt <= now) {
    throw new WaitpointTokenError('expired', `the waitpoint token expired at ${new Date(claims.expiresAt).toISOString()}`);
  }
  return claims;
}

export interface WaitpointOptions {
  /** How long the token is valid (default BATON_WAITPOINT_TTL_MS, 7 days): ms or '2h', '7d'. */
  ttlMs?: number | string;
}

export function secretOf(config: Pick<BatonConfig, 'waitpointSecret'>): string {
  if (!config.waitpointSecret) {
    throw new ConfigError('BATON_WAITPOINT_SECRET', 'waitpoint tokens need BATON_WAITPOINT_SECRET (at least 32 characters, the same on every process)');
  }
  return config.waitpointSecret;
}

/** A signed token (the caller gives the clock and a random nonce) that completes the wait for `event` of instance `workflowId` (the same on worker and client). */
export function mintWaitpoint(
  config: Pick<BatonConfig, 'waitpointSecret' | 'waitpointTtlMs'>,
  workflowId: string,
  event: string,
  options: WaitpointOptions,
  now: number,
  nonce: string,
): string {
  validateId(workflowId);
  validateEventName(event);
  if (options === null || typeof options !== 'object') throw new ValidationError('options must be an object');
  const ttlMs = options.ttlMs === undefined ? config.waitpointTtlMs : parseDuration(options.ttlMs, 'waitpoint ttlMs');
  if (ttlMs <= 0) throw new ValidationError('waitpoint ttlMs must be above 0');
  return signWaitpoint(secretOf(config), { workflowId, event, nonce, issuedAt: now, expiresAt: now + ttlMs });
}

