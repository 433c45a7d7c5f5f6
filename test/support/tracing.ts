/**
 * An OpenTelemetry SDK for tests: spans kept in memory, and as plain JSON so
 * that a worker process can hand its spans to the test that spawned it.
 */
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** What a test asserts about a finished span. */
export interface SpanJson {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
  status: { code: number; message?: string };
  events: { name: string; attributes: Record<string, unknown> }[];
}

export function spanJson(s: ReadableSpan): SpanJson {
  const sc = s.spanContext();
  return {
    name: s.name,
    kind: s.kind,
    traceId: sc.traceId,
    spanId: sc.spanId,
    parentSpanId: s.parentSpanContext?.spanId ?? null,
    links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
    attributes: { ...s.attributes },
    status: { ...s.status },
    events: s.events.map((e) => ({ name: e.name, attributes: { ...e.attributes } })),
  };
}

/** Register an SDK as the global tracer provider; `disable()` takes it away again. */
export function registerTracing(): { spans(): SpanJson[]; disable(): Promise<void> } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  return {
    spans: () => exporter.getFinishedSpans().map(spanJson),
    async disable() {
      trace.disable();
      context.disable();
      await provider.shutdown();
    },
  };
}
