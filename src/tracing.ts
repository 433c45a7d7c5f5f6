/**
 * OpenTelemetry traces, through `@opentelemetry/api` only: the application's
 * SDK (if it registers one) records and exports them. Without an SDK the API
 * would hand out non-recording spans; Baton makes none (TracerRef), and skips
 * the rest (attributes, trace context, context switches) for a span the SDK
 * does not record.
 *
 * The structure, following the OpenTelemetry messaging conventions (an
 * instance is the message, its definition the destination):
 *
 *   start/enqueue (PRODUCER, "start <workflow>" / "enqueue <task>")
 *     │ its context is stored with the instance (baton.workflows.trace_context)
 *     ├── attempt 1 of a step (CONSUMER, "process <task>"): child of it, and linked to it
 *     ├── attempt 2 (a retry): another CONSUMER span, same parent and link
 *     └── ... every step of the instance, whichever worker or commit scheduled it
 *
 * A child workflow's stored context is the span of the attempt whose commit
 * started it (or, when that attempt was not traced, its parent's stored
 * context), so its attempts sit under the parent's step in the same trace.
 */
import {
  context,
  createTraceState,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  type ProxyTracerProvider,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { TraceHeaders } from './store/instances.ts';

/** The instrumentation scope of every span Baton makes. */
export const TRACER_NAME = 'baton';

/**
 * The tracer of a client or worker: the registered SDK's, or none while no SDK is registered, in
 * which case Baton makes no span at all (not even the API's no-op one, an allocation and a context
 * lookup per attempt: about 0.6% of the worker's CPU in an S1 profile). An SDK registered later is
 * picked up, as the API's own proxy tracer would.
 */
export class TracerRef {
  private readonly provider: TracerProvider = trace.getTracerProvider();
  private found: Tracer | undefined = undefined;

  get(): Tracer | undefined {
    if (this.found) return this.found;
    const proxy = this.provider as Partial<ProxyTracerProvider>;
    // The API's global provider is a proxy that knows whether an SDK is behind it; another provider is used as it is.
    this.found = typeof proxy.getDelegateTracer === 'function' ? proxy.getDelegateTracer(TRACER_NAME) : this.provider.getTracer(TRACER_NAME);
    return this.found;
  }
}

/** The W3C headers of a span context: what a start stores for its attempts. */
export function traceHeaders(sc: SpanContext): TraceHeaders {
  const traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const tracestate = sc.traceState?.serialize() || null;
  return { traceparent, tracestate };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * A stored trace context (traceparent, then a space and tracestate if any) as a remote span
 * context; null when it is not a valid one (the SQL API checks what it stores, but a row may be
 * written by hand).
 */
export function parseTraceContext(stored: string): SpanContext | null {
  const space = stored.indexOf(' ');
  const m = TRACEPARENT.exec(space < 0 ? stored : stored.slice(0, space));
  if (!m || m[1] === 'ff') return null;
  const sc: SpanContext = { traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16), isRemote: true };
  if (!isSpanContextValid(sc)) return null;
  if (space >= 0) sc.traceState = createTraceState(stored.slice(space + 1));
  return sc;
}

/** How a start names its operation: `start` (start, startMany) or `enqueue` (enqueue, enqueueMany). */
export type StartOperation = 'start' | 'enqueue';

const PRODUCER = { kind: SpanKind.PRODUCER } as const;

/**
 * Run a start inside a PRODUCER span "<operation> <name>": `run` gets the headers to store (null
 * when nothing is traced). The span records the instance id (one start) or the batch size, and a
 * failure (exception and status ERROR).
 */
export async function producerSpan<T>(
  ref: TracerRef,
  operation: StartOperation,
  name: string,
  batch: number | null,
  run: (trace: TraceHeaders | null) => Promise<T>,
  messageId: (result: T) => string | null,
): Promise<T> {
  const tracer = ref.get();
  if (!tracer) return run(null);
  const span = tracer.startSpan(`${operation} ${name}`, PRODUCER);
  const sc = span.spanContext();
  // A span the SDK sampled out does not record, yet its context carries the decision on.
  const headers = isSpanContextValid(sc) ? traceHeaders(sc) : null;
  if (!span.isRecording()) {
    try {
      return await run(headers);
    } finally {
      span.end();
    }
  }
  span.setAttributes({
    'messaging.system': 'baton',
    'messaging.operation.type': 'send',
    'messaging.operation.name': operation,
    'messaging.destination.name': name,
    ...(batch === null ? {} : { 'messaging.batch.message_count': batch }),
  });
  try {
    const result = await context.with(trace.setSpan(context.active(), span), () => run(headers));
    const id = messageId(result);
    if (id !== null) span.setAttributes({ 'messaging.message.id': id, 'baton.workflow.id': id });
    return result;
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Record a failure on a span: the exception event and status ERROR with its message. */
export function recordError(span: Span, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}
