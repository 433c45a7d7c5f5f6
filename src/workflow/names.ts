import { ValidationError } from '../errors.ts';

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:\-/]{0,127}$/;
const CASE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
export const MAX_ID_LENGTH = 255;

/** Task, workflow and event names: 1-128 of letters, digits and _ . : - / (not starting with punctuation). */
export function validateName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ValidationError(
      `${what} name must be 1-128 characters of letters, digits, "_", ".", ":", "-" or "/", starting with a letter, digit or "_" (got ${JSON.stringify(name)})`,
    );
  }
  return name;
}

export function validateCaseName(name: string): string {
  if (!CASE.test(name)) {
    throw new ValidationError(`branch case name must be 1-64 letters, digits, "_", ".", ":" or "-" (got ${JSON.stringify(name)})`);
  }
  return name;
}

/** Free text that is stored verbatim: 1-128 characters, no control characters (quotes and SQL words are fine). */
function checkText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 128 || CONTROL.test(value)) {
    throw new ValidationError(`${what} must be 1-128 characters without control characters (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Tags: sorted, unique; each 1-128 characters without control characters. */
export function normalizeTags(tags: unknown, what = 'tags'): string[] {
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) throw new ValidationError(`${what} must be an array of strings`);
  for (const tag of tags) checkText(tag, `${what}: each tag`);
  return [...new Set(tags as string[])].sort();
}

/** Event names are the caller's words: any text, 1-128 characters, no control characters. */
export function validateEventName(name: unknown): string {
  return checkText(name, 'event name');
}

/** Instance ids chosen by callers: 1-255 characters, no control characters. Anything else is stored verbatim. */
export function validateId(id: unknown, what = 'id'): string {
  if (typeof id !== 'string') throw new ValidationError(`${what} must be a string (got ${typeof id})`);
  if (id.length === 0) throw new ValidationError(`${what} must not be empty`);
  if (id.length > MAX_ID_LENGTH) throw new ValidationError(`${what} must be at most ${MAX_ID_LENGTH} characters (got ${id.length})`);
  if (CONTROL.test(id)) throw new ValidationError(`${what} must not contain control characters`);
  return id;
}

export function validatePriority(priority: unknown, what = 'priority'): number {
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 1_000_000) {
    throw new ValidationError(`${what} must be a whole number from 0 to 1000000, lower runs first (got ${JSON.stringify(priority)})`);
  }
  return priority;
}
