/**
 * Traces across processes: this process starts instances under an
 * OpenTelemetry SDK (PRODUCER spans), a worker process with its own SDK runs
 * them (CONSUMER spans) and hands its spans back as JSON when it exits. The
 * trace context travels only through the database (trace_context).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Client } from '../src/index.ts';
import type { Held } from '../src/worker/held.ts';
import { AttemptSpans } from '../src/worker/tracing.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient } from './support/fixtures.ts';
import { registerTracing, type SpanJson } from './support/tracing.ts';
import { childWorker, inProcessWorker } from './support/workers.ts';
import { closeMarkPools, fatal, flaky, inc, parentWf } from './support/workflows.ts';

describe('traces', function () {
  this.timeout(90_000);
  const db = useTestDatabase();
  let client: Client;
  let tracing: ReturnType<typeof registerTracing>;
  let dir: string;

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-spans-'));
    tracing = registerTracing();
    client = await fixtureClient(db.url);
  });
  after(async () => {
    await client.close();
    await tracing.disable();
    await closeMarkPools();
    rmSync(dir, { recursive: true, force: true });
  });

  const SQL_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const SQL_SPAN = '00f067aa0ba902b7';

  it('links every attempt to the span that started its instance, across a worker in another process', async () => {
    const file = path.join(dir, 'worker.json');
    const worker = await childWorker(db.url, { BATON_TEST_SPANS: file });
    try {
      const retried = await client.enqueue(flaky, { succeedOn: 2 }, { id: 'tr-flaky' });
      const failed = await client.enqueue(fatal, null, { id: 'tr-fatal' });
      const parent = await client.start(parentWf, 1, { id: 'tr-parent' });
      await db.pool.query(`select baton.enqueue('inc', '1', 'tr-sql', p_traceparent => $1, p_tracestate => 'vendor=x')`, [`00-${SQL_TRACE}-${SQL_SPAN}-01`]);
      await db.pool.query(`select baton.enqueue('inc', '1', 'tr-plain')`);
      assert.deepEqual(await retried.result({ timeoutMs: 30_000 }), { attempt: 2 });
      await assert.rejects(failed.result({ timeoutMs: 30_000 }), /card declined/);
      assert.equal(await parent.result({ timeoutMs: 30_000 }), 10);
      assert.equal(await client.result('tr-sql', { timeoutMs: 30_000 }), 2);
      assert.equal(await client.result('tr-plain', { timeoutMs: 30_000 }), 2);
    } finally {
      assert.equal(await worker.stop('SIGTERM'), 0);
    }
    const consumed = JSON.parse(readFileSync(file, 'utf8')) as SpanJson[];
    const produced = tracing.spans();
    const attempts = (id: string) => consumed.filter((s) => s.attributes['baton.workflow.id'] === id).sort((a, b) => Number(a.attributes['baton.task.attempt']) - Number(b.attributes['baton.task.attempt']));
    const producer = (id: string) => {
      const found = produced.filter((s) => s.attributes['messaging.message.id'] === id);
      assert.equal(found.length, 1, `one producer span for ${id}`);
      return found[0]!;
    };
    const childOf = (span: SpanJson, parentSpan: { traceId: string; spanId: string }, what: string) => {
      assert.equal(span.kind, SpanKind.CONSUMER, `${what}: kind`);
      assert.equal(span.traceId, parentSpan.traceId, `${what}: same trace`);
      assert.equal(span.parentSpanId, parentSpan.spanId, `${what}: child of its producer`);
      assert.deepEqual(span.links, [{ traceId: parentSpan.traceId, spanId: parentSpan.spanId }], `${what}: linked to its producer`);
    };

    // A retried task: two attempt spans under one producer; the failed one records its error.
    const p1 = producer('tr-flaky');
    assert.equal(p1.kind, SpanKind.PRODUCER);
    assert.equal(p1.name, 'enqueue flaky');
    assert.equal(p1.attributes['messaging.system'], 'baton');
    assert.equal(p1.attributes['messaging.destination.name'], 'flaky');
    const stored = (await db.pool.query(`select trace_context from baton.workflows where id = 'tr-flaky'`)).rows[0].trace_context;
    assert.equal(stored, `00-${p1.traceId}-${p1.spanId}-01`, 'the instance stores the producer span context');
    const flakyRuns = attempts('tr-flaky');
    assert.deepEqual(flakyRuns.map((s) => [s.name, s.attributes['baton.task.attempt'], s.attributes['baton.task.outcome']]), [
      ['process flaky', 1, 'retry'],
      ['process flaky', 2, 'completed'],
    ]);
    for (const s of flakyRuns) childOf(s, p1, `flaky attempt ${s.attributes['baton.task.attempt']}`);
    assert.equal(flakyRuns[0]!.status.code, SpanStatusCode.ERROR);
    assert.equal(flakyRuns[0]!.status.message, 'attempt 1 failed');
    assert.deepEqual(flakyRuns[0]!.events.map((e) => [e.name, e.attributes['exception.message']]), [['exception', 'attempt 1 failed']]);
    assert.equal(flakyRuns[1]!.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(flakyRuns[1]!.events, []);
    assert.equal(flakyRuns[0]!.attributes['messaging.client.id'], worker.id);

    // A failing attempt, no retry.
    const fatalRuns = attempts('tr-fatal');
    assert.equal(fatalRuns.length, 1);
    childOf(fatalRuns[0]!, producer('tr-fatal'), 'fatal');
    assert.equal(fatalRuns[0]!.status.code, SpanStatusCode.ERROR);
    assert.equal(fatalRuns[0]!.attributes['baton.task.outcome'], 'failed');
    assert.equal(fatalRuns[0]!.events[0]!.attributes['exception.message'], 'card declined');

    // A workflow: each step under the start's span; the child workflow's steps under the attempt that started it.
    const p3 = producer('tr-parent');
    assert.equal(p3.name, 'start parent-wf');
    const parentSteps = attempts('tr-parent');
    assert.deepEqual(parentSteps.map((s) => s.name).sort(), ['process double', 'process inc']);
    for (const s of parentSteps) childOf(s, p3, `parent step ${s.attributes['baton.task.key']}`);
    const starter = parentSteps.find((s) => s.name === 'process inc')!;
    const childSteps = consumed.filter((s) => String(s.attributes['baton.workflow.id']).startsWith('tr-parent/'));
    assert.deepEqual(childSteps.map((s) => s.name).sort(), ['process double', 'process inc']);
    for (const s of childSteps) childOf(s, starter, `child step ${s.attributes['baton.task.key']}`);

    // A SQL start with a traceparent: its attempt joins the caller's trace.
    const sqlRuns = attempts('tr-sql');
    assert.equal(sqlRuns.length, 1);
    childOf(sqlRuns[0]!, { traceId: SQL_TRACE, spanId: SQL_SPAN }, 'SQL start');
    assert.equal((await db.pool.query(`select trace_context from baton.workflows where id = 'tr-sql'`)).rows[0].trace_context, `00-${SQL_TRACE}-${SQL_SPAN}-01 vendor=x`);

    // Without one: a root span of its own, no link.
    const plain = attempts('tr-plain');
    assert.equal(plain.length, 1);
    assert.equal(plain[0]!.parentSpanId, null);
    assert.deepEqual(plain[0]!.links, []);
  });

  it('a start in SQL refuses a malformed traceparent (BTV01), and old calls without one still work', async () => {
    for (const bad of ['00-abc-def-01', `00-${'0'.repeat(32)}-${SQL_SPAN}-01`, `ff-${SQL_TRACE}-${SQL_SPAN}-01`, `00-${SQL_TRACE.toUpperCase()}-${SQL_SPAN}-01`]) {
      await assert.rejects(
        db.pool.query(`select baton.start_workflow('inc', '1', null, null, null, 'fail', null, null, 'task', p_traceparent => $1)`, [bad]),
        (e: { code: string; message: string }) => e.code === 'BTV01' && /traceparent must be a W3C traceparent/.test(e.message),
        bad,
      );
    }
    await assert.rejects(
      db.pool.query(`select baton.start_many('inc', '[1]', 'task', p_tracestate => 'a=b')`),
      (e: { code: string }) => e.code === 'BTV01',
    );
    const before = (await db.pool.query(`select count(*)::int as n from baton.workflows`)).rows[0].n;
    await db.pool.query(`select baton.start_many('inc', '[1, 2]', 'task', null, null, null, null, 'fail', $1)`, [`00-${SQL_TRACE}-${SQL_SPAN}-00`]);
    const rows = (await db.pool.query(`select trace_context from baton.workflows order by created_at desc, id limit 2`)).rows;
    assert.deepEqual(rows.map((r) => r.trace_context), [`00-${SQL_TRACE}-${SQL_SPAN}-00`, `00-${SQL_TRACE}-${SQL_SPAN}-00`]);
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.workflows`)).rows[0].n, before + 2);
  });

  it('startMany makes one PRODUCER span for the batch, whose context every instance stores', async () => {
    const before = tracing.spans().length;
    const ids = await client.enqueueMany(inc, [1, 2, 3]);
    const [span, ...more] = tracing.spans().slice(before);
    assert.equal(more.length, 0);
    assert.equal(span!.kind, SpanKind.PRODUCER);
    assert.equal(span!.name, 'enqueue inc');
    assert.equal(span!.attributes['messaging.batch.message_count'], 3);
    const { rows } = await db.pool.query(`select distinct trace_context from baton.workflows where id = any($1)`, [ids]);
    assert.deepEqual(rows.map((r) => r.trace_context), [`00-${span!.traceId}-${span!.spanId}-01`]);
  });
});

describe('traces without an SDK', function () {
  this.timeout(60_000);
  const db = useTestDatabase();

  it('makes no span: every attempt shares one non-recording span, a start stores no trace context', async () => {
    const spans = new AttemptSpans('w');
    const held = { task: { workflowId: 'x', taskKey: '0', name: 'inc', attempts: 1, maxAttempts: 1, workflow: { name: 'inc', traceContext: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` } } } as unknown as Held;
    const a = spans.start(held);
    const b = spans.start(held);
    assert.equal(a, b, 'one shared span, nothing made per attempt');
    assert.equal(a.isRecording(), false);
    assert.equal(held.trace, undefined, 'no trace context for children');

    const client = await fixtureClient(db.url);
    const worker = await inProcessWorker(db.url, { tasks: [inc], workflows: [] });
    try {
      const job = await client.enqueue(inc, 1);
      assert.equal(await job.result({ timeoutMs: 20_000 }), 2);
      assert.equal((await db.pool.query(`select trace_context from baton.workflows where id = $1`, [job.id])).rows[0].trace_context, null);
    } finally {
      await worker.stop();
      await client.close();
    }
  });
});
