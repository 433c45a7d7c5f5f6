// A plain JavaScript app using the installed package.
import { createClient, defineTask, startWorker } from 'baton';

const double = defineTask('double', async (n) => n * 2);
const worker = await startWorker({ tasks: [double], concurrency: 2 });
const client = await createClient();
try {
  const job = await client.enqueue(double, 21);
  console.log(`js consumer: ${await job.result({ timeoutMs: 30_000 })}`);
} finally {
  await client.close();
  await worker.stop();
}
