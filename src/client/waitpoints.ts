/**
 * Waitpoint tokens on the client: mint one for an instance's wait (an app that holds the secret),
 * and complete a wait with a token alone (client.completeWaitpoint). The signature and expiry are
 * checked here, against the current secret and the previous ones (rotation); the database then
 * checks, in one transaction with the instance locked, that the token was not used before and that
 * its wait is still open, and delivers the payload as the event (see baton.complete_waitpoint).
 */
import { randomBytes } from 'node:crypto';
import { encodePayload, type Codec } from '../codec.ts';
import type { BatonConfig } from '../config.ts';
import { completeWaitpoint } from '../store/waitpoints.ts';
import type { Executor } from '../types.ts';
import { mintWaitpoint, secretOf, verifyWaitpoint, type WaitpointOptions } from '../workflow/waitpoint.ts';

/** A token for the wait for `event` of instance `workflowId`, made by an app that holds the secret. */
export function clientWaitpoint(config: BatonConfig, workflowId: string, event: string, options: WaitpointOptions = {}): string {
  return mintWaitpoint(config, workflowId, event, options, Date.now(), randomBytes(18).toString('base64url'));
}

export interface CompletedWaitpoint {
  workflowId: string;
  event: string;
  /** The id of the event the payload was delivered as. */
  eventId: number;
}

export async function completeWithToken(ex: Executor, config: BatonConfig, codec: Codec, token: string, payload: unknown): Promise<CompletedWaitpoint> {
  const claims = verifyWaitpoint(token, [secretOf(config), ...config.waitpointPreviousSecrets], Date.now());
  const encoded = encodePayload(codec, payload, 'waitpoint payload', config.maxPayloadBytes);
  const eventId = await completeWaitpoint(ex, claims, encoded);
  return { workflowId: claims.workflowId, event: claims.event, eventId };
}
