// Keyed events: an order waits for its payment by order id, not by instance id. Whoever learns of
// the payment (a webhook, another service) publishes it by name and key; the instance waiting on
// that key takes it, or, if none waits yet, it is kept until one does (BATON_EVENT_RETENTION_MS,
// 7 days by default):
//
//   npm run baton -- start paid-order '{"orderId":"o-17"}'
//   npm run baton -- publish payment o-17 '{"amount":25}'
import { defineTask, defineWorkflow } from 'baton';

type Order = { orderId: string };

export const shipPaidOrder = defineTask('ship-paid-order', async (payment: { amount: number }, ctx) => {
  ctx.log.info({ amount: payment.amount }, 'payment received, shipping');
  return { shipped: payment.amount > 0 };
});

export const paidOrder = defineWorkflow<Order>('paid-order')
  .waitForEvent<{ amount: number }>('payment', { key: (order) => order.orderId, timeoutMs: '2d' })
  .then(shipPaidOrder)
  .build();
