// A one-task background job: `client.enqueue(sendWelcomeEmail, { to })` or
// `npm run baton -- enqueue send-welcome-email '{"to":"ada@example.com"}'`.
import { defineTask } from 'baton';

export const sendWelcomeEmail = defineTask(
  'send-welcome-email',
  async (input: { to: string }, ctx) => {
    ctx.log.info({ to: input.to }, 'sending the welcome email');
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { sent: true, to: input.to, at: new Date().toISOString() };
  },
  { retry: { maxAttempts: 5, backoff: 'exponential', delayMs: 1_000 }, timeoutMs: '30s' },
);
