/**
 * A real worker process for tests: runs the test workflows against
 * DATABASE_URL with the BATON_* settings of its environment, says "ready" on
 * stdout, stops gracefully on SIGTERM/SIGINT (twice forces), exits 0.
 */
import { startWorker } from '../../src/index.ts';
import { all, closeMarkPools } from './workflows.ts';

const worker = await startWorker({ ...all, handleSignals: true });
worker.events.on('task:refused', (e) => process.stdout.write(`refused ${e.workflowId} ${e.taskKey}\n`));
process.stdout.write(`ready ${worker.id}\n`);
await worker.closed;
await closeMarkPools();
process.exit(0);
