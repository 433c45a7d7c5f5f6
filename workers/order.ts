// An order: charge, then ship and notify in parallel (each claimed on its own,
// so they may run on different workers), join, wait a moment (durable sleep),
// then wait for a "delivered" event from outside.
//
//   npm run baton -- start order '{"orderId":"o-1","amount":25}' --wait
//   npm run baton -- send <id> delivered '{"signedBy":"Ada"}'
import { defineTask, defineWorkflow } from 'baton';

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

export const charge = defineTask(
  'charge',
  async (order: { orderId: string; amount: number }, ctx) => {
    if (!(order.amount > 0)) throw new Error(`amount must be positive (got ${order.amount})`);
    ctx.progress(50, 'talking to the payment provider');
    await pause(200, ctx.signal);
    return { orderId: order.orderId, receipt: `r-${order.orderId}`, amount: order.amount };
  },
  { retry: { maxAttempts: 3 }, timeoutMs: '30s', priority: 1 },
);

export const ship = defineTask('ship', async (paid: { orderId: string }, ctx) => {
  await pause(300, ctx.signal);
  return { tracking: `t-${paid.orderId}` };
});

export const notifyCustomer = defineTask('notify-customer', async (paid: { orderId: string; receipt: string }) => ({
  emailed: true,
  receipt: paid.receipt,
}));

export const finalize = defineTask(
  'finalize',
  async ([shipped, notified]: [{ tracking: string }, { emailed: boolean; receipt: string }]) => ({
    tracking: shipped.tracking,
    receipt: notified.receipt,
    status: 'awaiting delivery',
  }),
);

export const order = defineWorkflow('order')
  .then(charge)
  .parallel([ship, notifyCustomer])
  .then(finalize)
  .sleep('2s')
  .waitForEvent<{ signedBy: string }>('delivered', { timeoutMs: '7d' })
  .build();
