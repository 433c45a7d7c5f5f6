// A workflow that waits for a person's approval through a signed link. The first step makes a
// waitpoint token and sends it out; the outside system that receives the click completes the wait
// with the token alone, without knowing the instance id or holding database credentials:
//
//   await client.completeWaitpoint(token, { approved: true, by: 'ada' });
//
// Needs BATON_WAITPOINT_SECRET (at least 32 characters, the same on workers and clients).
//   npm run baton -- start expense-approval '{"amount":120,"approver":"ada@example.com"}'
import { defineTask, defineWorkflow } from 'baton';

type Expense = { amount: number; approver: string };

export const askForApproval = defineTask('ask-for-approval', async (expense: Expense, ctx) => {
  const token = ctx.waitpointToken('approved', { ttlMs: '3d' });   // signed, expires, usable once
  const link = `https://example.com/approve?token=${encodeURIComponent(token)}`;
  ctx.log.info({ approver: expense.approver }, 'approval link sent');   // the token is not logged
  return { ...expense, linkSent: link.length > 0 };
});

export const expenseApproval = defineWorkflow<Expense>('expense-approval')
  .then(askForApproval)
  .waitForEvent<{ approved: boolean; by: string }>('approved', { timeoutMs: '3d' })
  .build();
