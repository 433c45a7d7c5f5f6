/**
 * Compile-time checks of the typed builder: `npm run typecheck` (part of
 * `npm test`) fails if a line marked @ts-expect-error compiles, or if a valid
 * line does not. Nothing here runs.
 */
import { defineTask, defineWorkflow } from '../src/workflow/index.ts';

const charge = defineTask('charge', async (input: { amount: number }) => ({ receipt: `r-${input.amount}` }));
const ship = defineTask('ship', async (input: { receipt: string }) => ({ tracking: input.receipt }));
const notify = defineTask('notify', async (_input: { receipt: string }) => 42);
const finalize = defineTask('finalize', async ([s, n]: [{ tracking: string }, number]) => `${s.tracking}:${n}`);
const count = defineTask('count', async (n: number) => n + 1);

// The first then() infers the workflow input; each step's input is the previous output.
export const order = defineWorkflow('order')
  .then(charge)
  .parallel([ship, notify])
  .then(finalize)
  .sleep('1h')
  .waitForEvent<{ at: string }>('delivered', { timeoutMs: '7d' })
  .build();
export const orderInput: Parameters<NonNullable<(typeof order)['__types']>['in']>[0] = { amount: 5 };
export const orderOutput: NonNullable<(typeof order)['__types']>['out'] = { at: 'noon' };

// @ts-expect-error ship needs { receipt }, charge's input is { amount }
defineWorkflow('wrong').then(charge).then(charge);

// @ts-expect-error the join gets a tuple, not the single output
defineWorkflow('wrong2').then(charge).parallel([ship, notify]).then(ship);

// Branch outputs are the union of the cases.
export const routed = defineWorkflow<number>('routed')
  .branch((n) => (n > 1 ? 'big' : 'small'), { big: count, small: (f) => f.then(count).then(count) })
  .then(count)
  .build();

// @ts-expect-error a string is not the workflow's number input
defineWorkflow<number>('typed').then(defineTask('s', async (s: string) => s));

// A loop body keeps the type; `until` sees the iteration output.
export const looped = defineWorkflow<number>('looped').loop((f) => f.then(count), { until: (n) => n > 3, max: 10 }).build();

// waitForEvent with onTimeout 'continue' may give null.
export const maybe = defineWorkflow<number>('maybe')
  .waitForEvent<string>('go', { timeoutMs: 10, onTimeout: 'continue' })
  // @ts-expect-error the payload may be null
  .then(defineTask('len', async (s: string) => s.length));

// Child workflows are typed like tasks.
const child = defineWorkflow<number>('child').then(count).build();
export const parent = defineWorkflow<number>('parent').child(child).then(count).build();
// @ts-expect-error the child takes a number
defineWorkflow<string>('parent2').child(child);

// An input check types the input: the parser's return type is the workflow's input.
const parseOrder = (v: unknown): { amount: number } => {
  if (typeof v !== 'object' || v === null || typeof (v as { amount?: unknown }).amount !== 'number') throw new Error('amount must be a number');
  return v as { amount: number };
};
export const checked = defineWorkflow('checked', { input: parseOrder }).then(charge).build();
export const checkedInput: Parameters<NonNullable<(typeof checked)['__types']>['in']>[0] = { amount: 1 };
// @ts-expect-error the check says amount is a number
export const checkedWrong: Parameters<NonNullable<(typeof checked)['__types']>['in']>[0] = { amount: 'one' };
// @ts-expect-error a task's check must return what its handler takes
defineTask('mismatch', async (n: number) => n, { input: (v: unknown) => String(v) });

// Any-of and quorum joins: the next step's input follows from the join option.
const afterAny = defineTask('after-any', async (w: { branch: 0; output: { tracking: string } } | { branch: 1; output: number }) =>
  w.branch === 0 ? w.output.tracking : String(w.output + 1),
);
export const anyJoin = defineWorkflow('any-join').then(charge).parallel([ship, notify], { join: 'any', rest: 'cancel' }).then(afterAny).build();
const afterQuorum = defineTask('after-quorum', async (ws: ({ branch: 0; output: { tracking: string } } | { branch: 1; output: number })[]) => ws.length);
export const quorumJoin = defineWorkflow('quorum-join').then(charge).parallel([ship, notify], { join: { quorum: 2 }, rest: 'finish' }).then(afterQuorum).build();
export const allJoin = defineWorkflow('all-join').then(charge).parallel([ship, notify], { join: 'all' }).then(finalize).build();

// @ts-expect-error an any-join hands one winner, not the tuple of all outputs
defineWorkflow('wrong-any').then(charge).parallel([ship, notify], { join: 'any' }).then(finalize);

// @ts-expect-error a quorum hands a list of winners, not one
defineWorkflow('wrong-quorum').then(charge).parallel([ship, notify], { join: { quorum: 1 } }).then(afterAny);

// @ts-expect-error rest is 'cancel' or 'finish'
defineWorkflow('wrong-rest').then(charge).parallel([ship, notify], { join: 'any', rest: 'wait' });

// A compensation gets { input, output } of its step.
const refund = defineTask('refund', async (x: { input: { amount: number }; output: { receipt: string } }) => x.output.receipt);
export const saga = defineWorkflow('saga').then(charge, { compensate: refund }).then(ship).build();
export const sagaLater = defineWorkflow<{ receipt: string }>('saga-later')
  .then(ship, { compensate: defineTask('untrack', async (x: { output: { tracking: string } }) => x.output.tracking) })
  .build();

// @ts-expect-error refund undoes a charge: it needs charge's input and output, not ship's
defineWorkflow('saga-wrong').then(charge).then(ship, { compensate: refund });
