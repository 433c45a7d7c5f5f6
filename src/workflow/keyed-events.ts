/**
 * Keyed events: `waitForEvent(name, { key: (input) => string })` waits for an event published by
 * name and key (client.publish, baton.publish_event, `baton publish`), not one sent to its instance.
 *
 * How a keyed wait lives (the SQL is in drizzle/functions/publish_event.sql, claim_tasks.sql, commit.sql):
 *
 *   scheduled     the task row is `ready` with event_key '' (the key is code: only a worker can run it)
 *   claimed ('')  the claim hands the worker the instance's input; the worker computes the key and
 *                 commits the step back to `waiting` under it (a key function that throws, or returns
 *                 anything but a string of 1-255 characters without control characters, fails the
 *                 step, and with it the instance, with a ValidationError naming the step)
 *   waiting       baton.publish_event wakes the oldest waiting step of its (name, key), by when its
 *                 wait began, one per event; a published event nobody waits for is buffered
 *   claimed (key) the claim hands the step the oldest free event of its (name, key) not past its
 *                 retention, and holds it for that attempt; the commit consumes (deletes) it. A step
 *                 that got none (another waiter took it) waits again; its time-out still applies.
 *
 * An event is consumed by exactly one wait: a hold is taken under FOR UPDATE SKIP LOCKED and the
 * commit deletes the event only while its attempt holds it. A buffered event is kept for the
 * publish's retention (default 7 days, DEFAULT_EVENT_RETENTION_MS); after that it is not handed to
 * any wait, and the reconciler deletes it. An event handed to a wait before it expired is delivered.
 *
 * The key is computed from the instance's input (what the workflow was started with), not the
 * step's input, so that it names the instance's business object wherever the wait is in the graph.
 */
import { ValidationError } from '../errors.ts';
import { MAX_ID_LENGTH } from './names.ts';

/** How long a published event waits for a waiter when the publish does not say: 7 days. */
export const DEFAULT_EVENT_RETENTION_MS = 7 * 86_400_000;
/** The longest retention a publish may ask for: 365 days. */
export const MAX_EVENT_RETENTION_MS = 365 * 86_400_000;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function isKey(key: unknown): key is string {
  return typeof key === 'string' && key.length > 0 && key.length <= MAX_ID_LENGTH && !CONTROL.test(key);
}

/** A published event's key, checked: a ValidationError for anything but 1-255 characters without control characters. */
export function validateEventKey(key: unknown): string {
  if (!isKey(key)) {
    throw new ValidationError(
      `event key must be a string of 1-${MAX_ID_LENGTH} characters without control characters (got ${typeof key === 'string' ? JSON.stringify(key.slice(0, 40)) : typeof key})`,
    );
  }
  return key;
}

/** A publish's retention in ms, checked (undefined: the default). */
export function validateEventRetention(ms: unknown): number {
  if (ms === undefined) return DEFAULT_EVENT_RETENTION_MS;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > MAX_EVENT_RETENTION_MS) {
    throw new ValidationError(`event retentionMs must be a whole number of ms from 1 to ${MAX_EVENT_RETENTION_MS} (got ${JSON.stringify(ms)})`);
  }
  return ms;
}

/**
 * The key a keyed wait at step `stepKey` waits on, from its key function and the instance's input.
 * A function that throws, or returns no valid key, is a ValidationError that says which.
 */
export function eventKeyOf(keyFn: (input: unknown) => unknown, input: unknown, eventName: string, stepKey: string): string {
  const what = `waitForEvent "${eventName}" at step "${stepKey}"`;
  let key: unknown;
  try {
    key = keyFn(input);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ValidationError(`${what}: its key function threw: ${message}`);
  }
  if (!isKey(key)) {
    throw new ValidationError(
      `${what}: its key function must return a string of 1-${MAX_ID_LENGTH} characters without control characters (got ${typeof key === 'string' ? JSON.stringify(key.slice(0, 40)) : typeof key})`,
    );
  }
  return key;
}
