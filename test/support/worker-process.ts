/**
 * A real worker process for tests: runs the test workflows against
 * DATABASE_URL with the BATON_* settings of its environment, says "ready" on
 * stdout, stops gracefully on SIGTERM/SIGINT (twice forces), exits 0.
 * With BATON_TEST_SPANS=<file> it registers an OpenTelemetry SDK first and
 * writes its finished spans to that file as JSON before it exits.
 */
import { writeFileSync } from 'node:fs';
import { startWorker } from '../../src/index.ts';
import { all, closeMarkPools } from './workflows.ts';

const spansFile = process.env.BATON_TEST_SPANS;
// Loaded only when asked for: the SDK would add to every test worker's start-up.
const tracing = spansFile ? (await import('./tracing.ts')).registerTracing() : undefined;
const worker = await startWorker({ ...all, handleSignals: true });
worker.events.on('task:refused', (e) => process.stdout.write(`refused ${e.workflowId} ${e.taskKey}\n`));
process.stdout.write(`ready ${worker.id}\n`);
await worker.closed;
await closeMarkPools();
if (spansFile && tracing) {
  writeFileSync(spansFile, JSON.stringify(tracing.spans()));
  await tracing.disable();
}
process.exit(0);
