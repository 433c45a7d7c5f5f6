/**
 * One CONSUMER span per attempt of a `task` step ("process <task>"), child of
 * the instance's stored producer context and linked to it (see src/tracing.ts
 * for the whole structure). System steps (sleep, waitForEvent, child, branch)
 * run no user code and get no span.
 *
 * Without an SDK no span is made: every attempt gets one shared
 * non-recording span, and nothing else is built: no attributes, no link, no
 * trace context for children, no context switch around the handler. With an
 * SDK whose sampler drops the span, the same is skipped (isRecording()).
 */
import { context, INVALID_SPAN_CONTEXT, ROOT_CONTEXT, SpanKind, trace, type Attributes, type Span, type SpanOptions } from '@opentelemetry/api';
import { parseTraceContext, recordError, traceHeaders, TracerRef } from '../tracing.ts';
import type { Held, Outcome } from './held.ts';

/** An attempt of an instance started untraced: a root span (not a child of whatever the worker's context holds). */
const ROOT_CONSUMER: SpanOptions = { kind: SpanKind.CONSUMER, root: true };

export class AttemptSpans {
  private readonly tracer = new TracerRef();
  /** What every attempt gets while no SDK is registered: one non-recording span, shared (its methods do nothing). */
  private readonly none: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

  constructor(private readonly workerId: string) {}

  /** Start the span of `held`'s attempt; endAttemptSpan() ends it, whichever way the attempt ends. */
  start(held: Held): Span {
    const tracer = this.tracer.get();
    if (!tracer) return this.none;
    const t = held.task;
    const stored = t.workflow.traceContext;
    let span: Span;
    if (stored === null) {
      span = tracer.startSpan(`process ${t.name}`, ROOT_CONSUMER, ROOT_CONTEXT);
      if (!span.isRecording()) return span;
      span.setAttributes(this.attributes(held));
    } else {
      const producer = parseTraceContext(stored);
      const options: SpanOptions = { kind: SpanKind.CONSUMER, attributes: this.attributes(held) };
      if (producer) options.links = [{ context: producer }];
      span = tracer.startSpan(`process ${t.name}`, options, producer ? trace.setSpanContext(ROOT_CONTEXT, producer) : ROOT_CONTEXT);
      if (!span.isRecording()) return span;
    }
    // Child workflows this attempt's commit starts are children of this span.
    held.trace = traceHeaders(span.spanContext());
    return span;
  }

  private attributes(held: Held): Attributes {
    const t = held.task;
    return {
      'messaging.system': 'baton',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': t.workflow.name,
      'messaging.message.id': t.workflowId,
      'messaging.client.id': this.workerId,
      'baton.workflow.id': t.workflowId,
      'baton.task.key': t.taskKey,
      'baton.task.name': t.name,
      'baton.task.attempt': t.attempts,
      'baton.task.max_attempts': t.maxAttempts,
    };
  }
}

/** Run `fn` with `span` as the active span (so the handler's own spans are its children); directly when it does not record. */
export function inSpan<T>(span: Span, fn: () => T): T {
  return span.isRecording() ? context.with(trace.setSpan(ROOT_CONTEXT, span), fn) : fn();
}

/** End an attempt's span with how it ended: `baton.task.outcome`, and a failure recorded (exception, status ERROR). */
export function endAttemptSpan(span: Span, outcome: Outcome, error: unknown): void {
  if (span.isRecording()) {
    if (outcome.kind === 'error') {
      span.setAttribute('baton.task.outcome', outcome.final ? 'failed' : 'retry');
      if (!outcome.final) span.setAttribute('baton.task.retry_in_ms', outcome.delayMs);
      recordError(span, error ?? new Error(outcome.error.message));
    } else {
      span.setAttribute('baton.task.outcome', 'completed');
    }
  }
  span.end();
}
