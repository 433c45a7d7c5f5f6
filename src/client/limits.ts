/** The limit keys of a bulk start (see src/workflow/start-keys.ts): given, one per input, or computed from the inputs. */
import { ValidationError } from '../errors.ts';
import type { Workflow } from '../workflow/builder.ts';
import { validateId } from '../workflow/names.ts';
import { hasKeyedFirstSteps, startLimitKey } from '../workflow/start-keys.ts';

export function startManyLimitKeys(target: Workflow | string, inputs: unknown[], given: unknown, what: string): string[] | null {
  if (given !== undefined) {
    if (!Array.isArray(given) || given.length !== inputs.length) {
      throw new ValidationError(`limitKeys must be an array with one key per input (${inputs.length})`);
    }
    return given.map((k, i) => validateId(k, `limitKeys[${i}]`));
  }
  if (typeof target === 'string' || !hasKeyedFirstSteps(target)) return null;
  const keys = inputs.map((input, i) => startLimitKey(target, input, `${what} inputs[${i}]`));
  return keys.every((k) => k === null) ? null : (keys as string[]);
}
