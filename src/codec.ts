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
 * refuses). Returns the encoded size in bytes.
 */
export function assertSerializable(value: unknown, what: string): void {
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): void => {
    switch (typeof v) {
      case 'bigint':
        throw new ValidationError(`${what} cannot be stored: ${path} is a BigInt (convert it to a string or number)`);
      case 'function':
        throw new ValidationError(`${what} cannot be stored: ${path} is a function`);
      case 'symbol':
        throw new ValidationError(`${what} cannot be stored: ${path} is a symbol`);
      case 'number':
        if (!Number.isFinite(v)) throw new ValidationError(`${what} cannot be stored: ${path} is ${v} (JSON has no such number)`);
        return;
      case 'string':
        if (v.includes('\u0000')) throw new ValidationError(`${what} cannot be stored: ${path} contains a NUL character`);
        return;
      case 'object': {
        if (v === null) return;
        if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return;
        if (seen.has(v)) throw new ValidationError(`${what} cannot be stored: ${path} is a circular reference`);
        seen.add(v);
        if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${path}[${i}]`));
        else for (const [k, item] of Object.entries(v)) walk(item, `${path}.${k}`);
        seen.delete(v);
        return;
      }
      default:
        return;
    }
  };
  walk(value, what);
}

/** Encode a payload for storage, refusing what cannot be stored or is over the size limit. */
export function encodePayload(codec: Codec, value: unknown, what: string, maxBytes: number): Json {
  assertSerializable(value, what);
  let encoded: Json;
  try {
    encoded = codec.encode(value === undefined ? null : value);
  } catch (error) {
    throw new ValidationError(`${what} cannot be encoded: ${(error as Error).message}`);
  }
  assertSerializable(encoded, what);
  const size = Buffer.byteLength(JSON.stringify(encoded));
  if (size > maxBytes) {
    throw new ValidationError(`${what} is ${size} bytes, over the limit of ${maxBytes} (BATON_MAX_PAYLOAD_BYTES)`);
  }
  return encoded;
}
