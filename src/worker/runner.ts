/**
 * Running one claimed task: user code for `task` steps, the worker's own
 * logic for sleep, waitForEvent, child and branch steps. Returns how the
 * attempt ended; never throws.
 *
 * Time-outs: when an attempt runs past its timeout its AbortSignal fires and
 * the attempt fails at once (the slot is freed). A handler that ignores the
 * signal keeps running in the background; a warning says so, and the worker
 * counts such handlers.
 */
import { encodePayload, type Codec } from '../codec.ts';
import { NonRetryableError, TimeoutError, coerceError, serializeError } from '../errors.ts';
import type { Logger } from '../types.ts';
import { decideRetry } from '../workflow/retry.ts';
import type { TaskContext } from '../workflow/task.ts';
import type { Held, Outcome } from './held.ts';

export interface RunnerDeps {
  codec: Codec;
  maxPayloadBytes: number;
  log: Logger;
  now(): number;
  random(): number;
  onStart(held: Held): void;
  onTimeout(held: Held, timeoutMs: number, settled: Promise<void>): void;
}

function failure(error: unknown, held: Held, deps: RunnerDeps, forceFinal = false): Outcome {
  const task = held.def.tasks.get(held.task.name);
  const policy = task?.options.retry;
  const decision = policy && !forceFinal ? decideRetry(policy, held.task.attempts, error, deps.random()) : ({ retry: false } as const);
  const serialized = serializeError(error);
  return decision.retry
    ? { kind: 'error', error: serialized, final: false, delayMs: decision.delayMs }
    : { kind: 'error', error: serialized, final: true, delayMs: 0 };
}

/** The system steps: no user code, no slot. */
export function runSystemStep(held: Held, deps: RunnerDeps): Outcome {
  const t = held.task;
  switch (t.kind) {
    case 'sleep':
      return { kind: 'completed', output: t.input };
    case 'branch':
      return { kind: 'branch', input: t.input };
    case 'event':
      if (t.event) return { kind: 'completed', output: t.event.payload, eventId: t.event.id };
      if (t.availableAt && t.availableAt.getTime() <= deps.now()) return { kind: 'timedOut' };
      return { kind: 'rewait' };
    case 'child': {
      const envelope = (t.output ?? {}) as { status?: string; output?: unknown; error?: { message?: string } | null };
      if (envelope.status === 'completed') return { kind: 'completed', output: envelope.output ?? null };
      const why = envelope.error?.message ?? 'no error recorded';
      return failure(new NonRetryableError(`child workflow "${t.name}" ${envelope.status ?? 'ended'}: ${why}`, { details: { child: envelope } }), held, deps, true);
    }
    default:
      return failure(new NonRetryableError(`step kind "${t.kind}" has no user code`), held, deps, true);
  }
}

/** Run a `task` step's handler with its context, time-out and abort signal. */
export async function runTask(held: Held, deps: RunnerDeps): Promise<Outcome> {
  const t = held.task;
  const task = held.def.tasks.get(t.name);
  if (!task) return failure(new NonRetryableError(`definition "${held.def.name}" has no task "${t.name}"`), held, deps, true);
  const log = deps.log.child({ workflowId: t.workflowId, taskKey: t.taskKey, task: t.name, attempt: t.attempts });
  const ctx: TaskContext = {
    workflowId: t.workflowId,
    taskKey: t.taskKey,
    attempt: t.attempts,
    signal: held.abort.signal,
    progress(percent, message) {
      const p = Number(percent);
      held.progress = { percent: Number.isFinite(p) ? Math.min(100, Math.max(0, p)) : 0, message: message ?? null, dirty: true };
    },
    log,
  };
  let input: unknown;
  try {
    input = deps.codec.decode(t.input as never);
  } catch (error) {
    return failure(new NonRetryableError(`the input could not be decoded: ${coerceError(error).message}`), held, deps, true);
  }

  deps.onStart(held);
  const timeoutMs = task.options.timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const handler = Promise.resolve().then(() => task.handler(input, ctx));
  const settled = handler.then(
    () => undefined,
    () => undefined,
  );
  const result = await new Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }>((resolve) => {
    handler.then(
      (value) => resolve({ ok: true, value }),
      (error) => resolve({ ok: false, error }),
    );
    if (timeoutMs !== null) {
      timer = setTimeout(() => {
        const error = new TimeoutError(`task "${t.name}" timed out after ${timeoutMs} ms (attempt ${t.attempts})`, { timeoutMs });
        held.abort.abort(error);
        deps.onTimeout(held, timeoutMs, settled);
        resolve({ ok: false, error });
      }, timeoutMs);
    }
    // A lost claim or a forced stop: stop waiting; the handler was told through its signal.
    onAbort = () => resolve({ ok: false, error: held.abort.signal.reason });
    held.abort.signal.addEventListener('abort', onAbort, { once: true });
  });
  if (timer) clearTimeout(timer);
  if (onAbort) held.abort.signal.removeEventListener('abort', onAbort);

  if (!result.ok) return failure(result.error, held, deps);
  try {
    return { kind: 'completed', output: encodePayload(deps.codec, result.value, `output of task "${t.name}"`, deps.maxPayloadBytes) };
  } catch (error) {
    return failure(new NonRetryableError((error as Error).message), held, deps, true);
  }
}
