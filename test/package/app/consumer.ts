// A TypeScript app using the installed package: compiled with the app's tsc against dist/*.d.ts.
// skipLibCheck as `tsc --init` sets it: drizzle-orm's own declarations do not check without it.
import { createClient, defineTask, defineWorkflow, startWorker, type Workflow } from 'baton';

const parse = defineTask('parse', async (text: string) => ({ n: Number(text) }));
const square = defineTask('square', async (x: { n: number }) => x.n * x.n);
const shout = defineTask('shout', async (text: string) => text.toUpperCase());

// The step types flow through .then: parse's output is square's input.
const calc = defineWorkflow('calc').then(parse).then(square).build();
const typed: Workflow<string, number> = calc;

// @ts-expect-error square's output (number) is not shout's input (string)
defineWorkflow('wrong').then(parse).then(square).then(shout);

const worker = await startWorker({ workflows: [typed], concurrency: 2 });
const client = await createClient();
try {
  const run = await client.start(calc, '7');
  const out: number = await run.result({ timeoutMs: 30_000 });
  // @ts-expect-error the result is a number, not a string
  const wrong: string = out;
  void wrong;
  console.log(`ts consumer: ${out}`);
} finally {
  await client.close();
  await worker.stop();
}
