/**
 * Payloads (inputs, outputs, event payloads) are stored as jsonb so a person
 * can read them with psql. A codec may change the representation (for example
 * to keep Dates or BigInts); whatever it returns must be plain JSON, and is
 * checked here before anything is written.
 */
import { ValidationError } from './errors.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Codec {
  encode(value: unknown): Json;
  decode(json: Json): unknown;
}

/** Plain JSON: values go in as they are (Dates become ISO strings via toJSON). */
export const jsonCodec: Codec = {
  encode: (value) => JSON.parse(JSON.stringify(value ?? null)) as Json,
  decode: (json) => json,
};

/**
 * Check that a value can be stored faithfully as JSON: no BigInt, function,
 * symbol, circular reference, non-finite number or NUL character (which jsonb
 * refuses).
 */
export function assertSerializable(value: unknown, what: string): void {
  // Most payloads are small or scalar (a no-op task returns null): check those without the walk.
  if (value === null || typeof value !== 'object') checkScalar(value, what, []);
  else walk(value, what, [], new Set());
}

/** The path of the value being checked, as `what.key[3]`: built only for an error message. */
function pathOf(what: string, keys: readonly (string | number)[]): string {
  let path = what;
  for (const k of keys) path += typeof k === 'number' ? `[${k}]` : `.${k}`;
  return path;
}

function checkScalar(v: unknown, what: string, keys: readonly (string | number)[]): void {
  switch (typeof v) {
    case 'bigint':
      throw new ValidationError(`${what} cannot be stored: ${pathOf(what, keys)} is a BigInt (convert it to a string or number)`);
    case 'function':
      throw new ValidationError(`${what} cannot be stored: ${pathOf(what, keys)} is a function`);
    case 'symbol':
      throw new ValidationError(`${what} cannot be stored: ${pathOf(what, keys)} is a symbol`);
    case 'number':
      if (!Number.isFinite(v)) throw new ValidationError(`${what} cannot be stored: ${pathOf(what, keys)} is ${v} (JSON has no such number)`);
      return;
    case 'string':
      if (v.includes('\u0000')) throw new ValidationError(`${what} cannot be stored: ${pathOf(what, keys)} contains a NUL character`);
      return;
    default:
      return;
  }
}

/** Depth first, in the order the values would be written; `keys` is the path to `v` (pushed and popped, not copied). */
function walk(v: unknown, what: string, keys: (string | number)[], seen: Set<object>): void {
  if (v === null || typeof v !== 'object') return checkScalar(v, what, keys);
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return;
  if (seen.has(v)) throw new ValidationError(`${what} cannot be stored: ${pathOf(what, keys)} is a circular reference`);
  seen.add(v);
  if (Array.isArray(v)) {
    // As forEach would: the length read once, holes skipped.
    for (let i = 0, n = v.length; i < n; i++) {
      if (!(i in v)) continue;
      keys.push(i);
      walk(v[i], what, keys, seen);
      keys.pop();
    }
  } else {
    for (const k of Object.keys(v)) {
      keys.push(k);
      walk((v as Record<string, unknown>)[k], what, keys, seen);
      keys.pop();
    }
  }
  seen.delete(v);
}

/** Encode a payload for storage, refusing what cannot be stored or is over the size limit. */
export function encodePayload(codec: Codec, value: unknown, what: string, maxBytes: number): Json {
  assertSerializable(value, what);
  let encoded: Json;
  // The plain JSON codec's text is what JSON.stringify(encoded) would give again: measure it, once.
  let text: string | undefined;
  try {
    if (codec === jsonCodec) {
      text = JSON.stringify(value ?? null);
      encoded = JSON.parse(text as string) as Json;
    } else encoded = codec.encode(value === undefined ? null : value);
  } catch (error) {
    throw new ValidationError(`${what} cannot be encoded: ${(error as Error).message}`);
  }
  assertSerializable(encoded, what);
  const size = Buffer.byteLength(text ?? JSON.stringify(encoded));
  if (size > maxBytes) {
    throw new ValidationError(`${what} is ${size} bytes, over the limit of ${maxBytes} (BATON_MAX_PAYLOAD_BYTES)`);
  }
  return encoded;
}
