/**
 * JSON merge patches (RFC 7386) between two states, so each history row holds
 * only what a checkpoint changed and any version can be rebuilt by applying
 * the patches in order. State never holds null values of its own (removal is
 * the only meaning of null here).
 */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The patch that turns `from` into `to`; undefined when they are equal. */
export function diff(from: unknown, to: unknown): Json | undefined {
  if (isObject(from) && isObject(to)) {
    const patch: Record<string, Json> = {};
    for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
    for (const [key, value] of Object.entries(to)) {
      if (!(key in from)) patch[key] = value as Json;
      else {
        const d = diff(from[key], value);
        if (d !== undefined) patch[key] = d;
      }
    }
    return Object.keys(patch).length ? patch : undefined;
  }
  return JSON.stringify(from) === JSON.stringify(to) ? undefined : (structuredClone(to) as Json);
}

export function applyPatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyPatch(out[key], value);
  }
  return out;
}
