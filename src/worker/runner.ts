/**
 * Running claimed tasks: user code for `task` steps, in a bounded number of
 * slots, and the worker's own logic for sleep, waitForEvent, child and branch
 * steps. Tells how each attempt ended; never throws.
 *
 * Time-outs: when an attempt runs past its timeout its AbortSignal fires and
 * the attempt fails at once (the slot is freed). A handler that ignores the
 * signal keeps running in the background; a warning says so, and the worker
 * counts such handlers.
 */
import { randomBytes } from 'node:crypto';
import { encodePayload, type Codec } from '../codec.ts';
import { NonRetryableError, TimeoutError, ValidationError, coerceError, serializeError } from '../errors.ts';
import type { Span } from '@opentelemetry/api';
import type { Logger } from '../types.ts';
import { nodeAt } from '../workflow/graph.ts';
import { eventKeyOf } from '../workflow/keyed-events.ts';
import { isCompensationKey } from '../workflow/compensate.ts';
import { limitKeyOf } from '../workflow/limits.ts';
import { decideRetry } from '../workflow/retry.ts';
import { parseWith, type TaskContext, type TaskStream } from '../workflow/task.ts';
import { mintWaitpoint, type WaitpointOptions } from '../workflow/waitpoint.ts';
import { unwatchAbort, watchAbort, type Held, type HeldTask, type Outcome } from './held.ts';
import { endAttemptSpan, inSpan, type AttemptSpans } from './tracing.ts';
import { StreamWriter, type AttemptIo } from './streams.ts';

export { attemptIo } from './streams.ts';

export interface RunnerDeps {
  codec: Codec;
  maxPayloadBytes: number;
  log: Logger;
  spans: AttemptSpans;
  /** For ctx.stream and ctx.waitpointToken. */
  io: AttemptIo;
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

/** A compensation's input is `{ input, output }` of its step, each stored (and so decoded) on its own. */
function decodeCompensationInput(codec: Codec, stored: unknown): unknown {
  const { input, output } = (stored ?? {}) as { input?: unknown; output?: unknown };
  return { input: codec.decode((input ?? null) as never), output: codec.decode((output ?? null) as never) };
}

/** The system steps: no user code, no slot. */
export function runSystemStep(held: Held, deps: RunnerDeps): Outcome {
  const t = held.task;
  switch (t.kind) {
    case 'sleep':
      return { kind: 'completed', output: t.input };
    case 'branch':
      return { kind: 'branch', input: t.input };
    case 'compensate':
      // A cancel's request to compensate: its input is the cancel's error, which the machine takes as the cause.
      return { kind: 'completed', output: t.input };
    case 'event':
      if (t.event) return { kind: 'completed', output: t.event.payload, eventId: t.event.id };
      if (t.eventKey === '') return resolveEventKey(held, deps);
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

/**
 * A keyed wait's first attempt: compute its key from the instance's input (the claim's `input`) and
 * wait under it, or time out; a key function that throws or returns no valid key fails the step.
 */
function resolveEventKey(held: Held, deps: RunnerDeps): Outcome {
  const t = held.task;
  let eventKey: string;
  try {
    const node = nodeAt(held.def.root, t.taskKey);
    if (node.kind !== 'event' || !node.key) throw new ValidationError(`step "${t.taskKey}" is not a keyed waitForEvent in this definition`);
    eventKey = eventKeyOf(node.key.bind(node), t.input, t.name, t.taskKey);
  } catch (error) {
    return failure(error, held, deps, true);
  }
  if (t.availableAt && t.availableAt.getTime() <= deps.now()) return { kind: 'timedOut' };
  return { kind: 'rewait', eventKey };
}

export interface SlotsOptions {
  size: number;
  deps: RunnerDeps;
  /**
   * A task's turn has come: whether it still runs (it was not lost or given back meanwhile), or a
   * promise of that (a suspect is marked begun in the database first; its slot waits for it).
   */
  begin(held: HeldTask): boolean | Promise<boolean>;
  /** How its attempt ended; its slot is freed right after. */
  finish(held: Held, outcome: Outcome): void;
}

/**
 * The worker's task slots: at most `size` attempts run at once, the other
 * claimed tasks wait in claim order. (p-limit did this before, at a few
 * promises and closures per task.)
 *
 * A task given a slot by add() starts once the claimed batch has been
 * dispatched (a microtask later): until then it is still buffered, so that
 * an isolated task later in the same batch can send it back (see the worker's
 * dispatch).
 */
export class Slots {
  private active = 0;
  private waiting: HeldTask[] = [];
  private starting: HeldTask[] = [];
  private readonly done: AttemptDone;

  constructor(private readonly o: SlotsOptions) {
    this.done = (held, outcome) => {
      try {
        o.finish(held, outcome);
      } finally {
        this.free();
      }
    };
  }

  /** Tasks in a slot: running, or about to start. */
  get running(): number {
    return this.active;
  }

  /** Tasks waiting for a slot. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  add(held: HeldTask): void {
    if (this.active >= this.o.size) {
      this.waiting.push(held);
      return;
    }
    this.active += 1;
    if (this.starting.push(held) === 1) queueMicrotask(() => this.startBatch());
  }

  /** Forget the waiting tasks (the caller gives them back). */
  clearWaiting(): void {
    this.waiting = [];
  }

  private startBatch(): void {
    const batch = this.starting;
    this.starting = [];
    for (const held of batch) this.run(held);
  }

  private run(held: HeldTask): void {
    const go = this.o.begin(held);
    if (go === true) runTask(held, this.o.deps, this.done);
    else if (go === false) this.free();
    else
      void go.then(
        (ok) => (ok ? runTask(held, this.o.deps, this.done) : this.free()),
        () => this.free(),
      );
  }

  private free(): void {
    this.active -= 1;
    const next = this.waiting.shift();
    if (next) {
      this.active += 1;
      this.run(next);
    }
  }
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Told how an attempt ended, once, always asynchronously (never inside the call that started it or aborted it). */
type AttemptDone = (held: Held, outcome: Outcome) => void;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Run a `task` step's handler with its context, time-out and abort signal;
 * `done` is told how the attempt ended.
 *
 * The per-task cost is kept small (S1 runs thousands of no-op tasks a second
 * on a core it shares with PostgreSQL): the context's logger and AbortSignal
 * are made only if the handler reads them, a timer only when the task has a
 * time-out, and the only promise waited on is the handler's own.
 */
function runTask(held: Held, deps: RunnerDeps, done: AttemptDone): void {
  const span = deps.spans.start(held);
  const attempt = new Attempt(held, deps, done, span);
  const t = held.task;
  const task = held.def.tasks.get(t.name);
  if (!task) return attempt.failNow(new NonRetryableError(`definition "${held.def.name}" has no task "${t.name}"`));
  const ctx: TaskContext = new Context(held, deps);
  let input: unknown;
  try {
    input = isCompensationKey(t.taskKey) ? decodeCompensationInput(deps.codec, t.input) : deps.codec.decode(t.input as never);
  } catch (error) {
    return attempt.failNow(new NonRetryableError(`the input could not be decoded: ${coerceError(error).message}`));
  }
  if (task.parseInput) {
    // Input from SQL or from the previous step is checked too; a bad one will not get better with retries.
    try {
      input = parseWith(task.parseInput, input, `task "${t.name}"`);
    } catch (error) {
      return attempt.failNow(new NonRetryableError(coerceError(error).message));
    }
  }
  if (task.options.limits?.key) {
    // A step scheduled while its key function failed was left unlimited (src/worker/plan.ts): fail it
    // here rather than run it outside its limit. A key that fails now will fail again.
    try {
      limitKeyOf(task.options.limits, input, `task "${t.name}"`);
    } catch (error) {
      return attempt.failNow(new NonRetryableError(coerceError(error).message));
    }
  }

  deps.onStart(held);
  const timeoutMs = task.options.timeoutMs;
  if (timeoutMs === null) {
    let returned: unknown;
    try {
      returned = span.isRecording() ? inSpan(span, () => task.handler(input, ctx)) : task.handler(input, ctx);
    } catch (error) {
      return attempt.end({ ok: false, error }, true);
    }
    if (isThenable(returned)) attempt.wait(Promise.resolve(returned), null);
    else attempt.end({ ok: true, value: returned }, true);
  } else {
    // The clock starts before the handler runs: a long synchronous start counts against its time.
    attempt.wait(
      Promise.resolve().then(span.isRecording() ? () => inSpan(span, () => task.handler(input, ctx)) : () => task.handler(input, ctx)),
      timeoutMs,
    );
  }
}

/**
 * One attempt's end: the handler settles, its time-out passes, or it is
 * aborted (a lost claim or a forced stop: stop waiting; the handler was told
 * through its signal), whichever comes first.
 */
class Attempt {
  private timer: NodeJS.Timeout | undefined = undefined;
  private listener: (() => void) | undefined = undefined;
  private ended = false;

  constructor(
    private readonly held: Held,
    private readonly deps: RunnerDeps,
    private readonly done: AttemptDone,
    private readonly span: Span,
  ) {}

  wait(handler: Promise<unknown>, timeoutMs: number | null): void {
    handler.then(
      (value) => this.end({ ok: true, value }, false),
      (error) => this.end({ ok: false, error }, false),
    );
    if (timeoutMs !== null) this.timer = setTimeout(() => this.timeOut(handler, timeoutMs), timeoutMs);
    this.listener = () => this.end({ ok: false, error: this.held.abort.signal.reason }, true);
    watchAbort(this.held, this.listener);
  }

  /** Failed before its handler ran: final, no retry. */
  failNow(error: Error): void {
    this.ended = true;
    const outcome = failure(error, this.held, this.deps, true);
    endAttemptSpan(this.span, outcome, error);
    queueMicrotask(() => this.done(this.held, outcome));
  }

  private timeOut(handler: Promise<unknown>, timeoutMs: number): void {
    const t = this.held.task;
    const error = new TimeoutError(`task "${t.name}" timed out after ${timeoutMs} ms (attempt ${t.attempts})`, { timeoutMs });
    // The attempt ends with the time-out, not with the abort that tells the handler.
    this.end({ ok: false, error }, true);
    this.held.abort.abort(error);
    this.deps.onTimeout(this.held, timeoutMs, handler.then(nothing, nothing));
  }

  /** `later`: not called from a promise reaction, so report in a microtask rather than inside the caller. */
  end(result: Settled, later: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.listener) unwatchAbort(this.held, this.listener);
    if (later) queueMicrotask(() => this.report(result));
    else this.report(result);
  }

  private report(result: Settled): void {
    const { held, deps } = this;
    let outcome: Outcome;
    let error: unknown = undefined;
    if (!result.ok) outcome = failure((error = result.error), held, deps);
    else {
      try {
        outcome = { kind: 'completed', output: encodePayload(deps.codec, result.value, `output of task "${held.task.name}"`, deps.maxPayloadBytes) };
      } catch (e) {
        error = new NonRetryableError((e as Error).message);
        outcome = failure(error, held, deps, true);
      }
    }
    // Frames the handler streamed are stored before its result (a frame not stored fails the attempt).
    if (held.stream) {
      held.stream.end().then(
        () => this.settle(outcome, error),
        (e: unknown) => this.settle(failure(e, held, deps), e),
      );
    } else this.settle(outcome, error);
  }

  private settle(outcome: Outcome, error: unknown): void {
    endAttemptSpan(this.span, outcome, error);
    this.done(this.held, outcome);
  }
}

function nothing(): void {}

/**
 * A task's context. `signal` and `log` are accessors, made on first use, yet
 * own and enumerable like the other fields (so `{ ...ctx }` still copies
 * them); they are defined from one shared descriptor, which keeps every
 * context on the same hidden class.
 */
class Context implements TaskContext {
  declare workflowId: string;
  declare taskKey: string;
  declare attempt: number;
  declare signal: AbortSignal;
  declare progress: (percent: number, message?: string) => void;
  declare log: Logger;
  declare stream: TaskStream;
  declare waitpointToken: (event?: string, options?: WaitpointOptions) => string;
  #held: Held;
  #deps: RunnerDeps;
  #parentLog: Logger;
  #signal: AbortSignal | undefined = undefined;
  #log: Logger | undefined = undefined;

  constructor(held: Held, deps: RunnerDeps) {
    this.#held = held;
    this.#deps = deps;
    this.#parentLog = deps.log;
    const t = held.task;
    this.workflowId = t.workflowId;
    this.taskKey = t.taskKey;
    this.attempt = t.attempts;
    Object.defineProperty(this, 'signal', Context.#signalProperty);
    this.progress = (percent, message) => {
      const p = Number(percent);
      held.progress = { percent: Number.isFinite(p) ? Math.min(100, Math.max(0, p)) : 0, message: message ?? null, dirty: true };
    };
    Object.defineProperty(this, 'log', Context.#logProperty);
    Object.defineProperty(this, 'stream', Context.#streamProperty);
    Object.defineProperty(this, 'waitpointToken', Context.#waitpointProperty);
  }

  static readonly #waitpointProperty: PropertyDescriptor = {
    get(this: Context) {
      const io = this.#deps.io;
      const id = this.#held.task.workflowId;
      return (event = 'waitpoint', options: WaitpointOptions = {}) => mintWaitpoint(io.waitpoints, id, event, options, Date.now(), randomBytes(18).toString('base64url'));
    },
    enumerable: true,
    configurable: true,
  };

  static readonly #streamProperty: PropertyDescriptor = {
    get(this: Context) {
      const held = this.#held;
      return (held.stream ??= new StreamWriter(held, this.#deps.io));
    },
    enumerable: true,
    configurable: true,
  };

  static readonly #signalProperty: PropertyDescriptor = {
    get(this: Context) {
      return (this.#signal ??= this.#held.abort.signal);
    },
    set(this: Context, value: AbortSignal) {
      this.#signal = value;
    },
    enumerable: true,
    configurable: true,
  };

  static readonly #logProperty: PropertyDescriptor = {
    get(this: Context) {
      const t = this.#held.task;
      // The fields of the worker's own lines about this task (taskFields), and its workerId through the parent.
      return (this.#log ??= this.#parentLog.child({ workflowId: t.workflowId, taskKey: t.taskKey, task: t.name, attempt: t.attempts }));
    },
    set(this: Context, value: Logger) {
      this.#log = value;
    },
    enumerable: true,
    configurable: true,
  };
}
