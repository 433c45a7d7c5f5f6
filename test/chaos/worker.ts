// A worker process of the fault suite: the chaos workflows, settings from BATON_* variables.
import { startWorker } from '../../src/index.ts';
import { ALL, closeLedger } from './workflows.ts';

const worker = await startWorker({ workflows: ALL, handleSignals: true });
worker.events.on('task:refused', (e) => process.stdout.write(`refused ${e.workflowId} ${e.taskKey}\n`));
worker.events.on('task:timeout', (e) => process.stdout.write(`timeout ${e.workflowId} ${e.taskKey}\n`));
process.stdout.write(`ready ${worker.id}\n`);
await worker.closed;
await closeLedger();
process.exit(0);
