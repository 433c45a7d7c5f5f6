/**
 * One CONSUMER span per attempt of a `task` step ("process <task>"), child of
 * the instance's stored producer context and linked to it (see src/tracing.ts
 * for the whole structure). System steps (sleep, waitForEvent, child, branch)
 * run no user code and get no span.
 *
 * Without an SDK the API's tracer returns a non-recording span at once: an
 * attempt then costs one startSpan call with shared options and the root
 * context (no context lookup), and nothing else is built: no attributes, no
 * link, no trace context for children, no context switch around the handler.
 */
import { context, ROOT_CONTEXT, SpanKind, trace, type Attributes, type Span, type SpanOptions, type Tracer } from '@opentelemetry/api';
import { parseTraceContext, recordError, traceHeaders } from '../tracing.ts';
import type { Held, Outcome } from './held.ts';

const CONSUMER: SpanOptions = { kind: SpanKind.CONSUMER };

export class AttemptSpans {
  constructor(
    private readonly tracer: Tracer,
    private readonly workerId: string,
  ) {}

  /** Start the span of `held`'s attempt. Ended by end(), whichever way the attempt ends. */
  start(held: Held): Span {
    const t = held.task;
    const stored = t.workflow.traceContext;
    let span: Span;
    if (stored === null) {
      // Started without a trace: a root span (not a child of whatever the worker's context holds).
      span = this.tracer.startSpan(`process ${t.name}`, CONSUMER, ROOT_CONTEXT);
      if (!span.isRecording()) return span;
      span.setAttributes(this.attributes(held));
    } else {
      const producer = parseTraceContext(stored);
      const options: SpanOptions = { kind: SpanKind.CONSUMER, attributes: this.attributes(held) };
      if (producer) options.links = [{ context: producer }];
      span = this.tracer.startSpan(`process ${t.name}`, options, producer ? trace.setSpanContext(ROOT_CONTEXT, producer) : ROOT_CONTEXT);
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
