import assert from 'node:assert/strict';
import { encodePayload, encodePayloadText, jsonCodec, type Codec } from '../src/codec.ts';
import { ValidationError } from '../src/errors.ts';

const MB = 1 << 20;

describe('payload encoding (codec.ts)', () => {
  it('the text form is what the object form would be written as, for plain JSON', () => {
    const when = new Date('2026-12-06T06:00:00.000Z');
    const values: unknown[] = [null, undefined, 0, -0, 1e21, 'text', [1, undefined, 'x'], { a: 1, b: undefined, c: { when }, d: [true, null] }, when];
    for (const v of values) {
      assert.equal(encodePayloadText(jsonCodec, v, 'input', MB), JSON.stringify(encodePayload(jsonCodec, v, 'input', MB)), `for ${String(v)}`);
    }
    assert.equal(encodePayloadText(jsonCodec, { c: { when } }, 'input', MB), '{"c":{"when":"2026-12-06T06:00:00.000Z"}}');
    assert.equal(encodePayloadText(jsonCodec, undefined, 'input', MB), 'null');
  });

  it('a custom codec: its result, checked, is the text', () => {
    const wrap: Codec = { encode: (v) => ({ wrapped: v as number }), decode: (j) => (j as { wrapped: unknown }).wrapped };
    assert.equal(encodePayloadText(wrap, 7, 'input', MB), '{"wrapped":7}');
    assert.deepEqual(encodePayload(wrap, 7, 'input', MB), { wrapped: 7 });
    const leaky: Codec = { encode: (v) => ({ big: BigInt(v as number) }) as never, decode: (j) => j };
    assert.throws(() => encodePayloadText(leaky, 1, 'input', MB), /input cannot be stored: input\.big is a BigInt/);
    const empty: Codec = { encode: () => undefined as never, decode: (j) => j };
    assert.throws(() => encodePayloadText(empty, 1, 'input', MB), (e: unknown) => e instanceof ValidationError && /no JSON form/.test(e.message));
  });

  it('refuses a NUL character wherever it is, naming where, and keeps a backslash followed by u0000', () => {
    const cases: [unknown, RegExp][] = [
      [{ a: ['x', 'b\u0000'] }, /input cannot be stored: input\.a\[1\] contains a NUL character/],
      [{ 'k\u0000': 1 }, /input cannot be stored: a key of input contains a NUL character/],
      [{ nested: { toJSON: () => ({ s: 'n\u0000' }) } }, /input cannot be stored: input\.nested\.s contains a NUL character/],
    ];
    for (const [v, message] of cases) {
      assert.throws(() => encodePayloadText(jsonCodec, v, 'input', MB), (e: unknown) => e instanceof ValidationError && message.test(e.message));
      assert.throws(() => encodePayload(jsonCodec, v, 'input', MB), (e: unknown) => e instanceof ValidationError && message.test(e.message));
    }
    // Six characters, a backslash then "u0000": JSON writes the backslash escaped, and it is stored as it is.
    const literal = { s: 'a\\u0000b', ['\\u0000']: 1 };
    assert.equal(encodePayloadText(jsonCodec, literal, 'input', MB), JSON.stringify(literal));
  });

  it('a toJSON that gives nothing cannot be stored', () => {
    assert.throws(() => encodePayloadText(jsonCodec, { toJSON: () => undefined }, 'input', MB), (e: unknown) => e instanceof ValidationError && /input cannot be encoded: it has no JSON form/.test(e.message));
  });

  it('the size limit counts the bytes of the text', () => {
    // 'é' is two bytes in UTF-8: 3 characters of JSON quotes and text, 4 bytes.
    assert.equal(encodePayloadText(jsonCodec, 'é', 'input', 4), '"é"');
    assert.throws(() => encodePayloadText(jsonCodec, 'éé', 'input', 5), /input is 6 bytes, over the limit of 5/);
  });
});
