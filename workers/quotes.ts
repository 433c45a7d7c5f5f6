// An any-of join and a quorum join: ask three carriers for a quote, go on as
// soon as two answered (the third is cancelled: its handler's signal fires),
// pick the cheaper one; then book with whichever of two mirrors answers first.
//
//   npm run baton -- start quotes '{"kg":12}' --wait
import { defineTask, defineWorkflow } from 'baton';

type Parcel = { kg: number };
type Quote = { carrier: string; price: number };

const quoteFrom = (carrier: string, perKg: number, delayMs: number) =>
  defineTask(`quote-${carrier}`, async (parcel: Parcel, ctx): Promise<Quote> => {
    // A slow carrier is cut off when the quorum is met: stop waiting when told.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, delayMs);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason as Error);
      });
    });
    return { carrier, price: Math.round(parcel.kg * perKg * 100) / 100 };
  });

// Two winners, in the order they answered: [{ branch, output }, { branch, output }].
export const cheapest = defineTask('cheapest', async (answers: { branch: number; output: Quote }[]) =>
  answers.map((a) => a.output).reduce((best, q) => (q.price < best.price ? q : best)),
);

const bookAt = (mirror: string) =>
  defineTask(`book-${mirror}`, async (quote: Quote) => ({ ...quote, booking: `${mirror}-${quote.carrier}-${Date.now()}` }));

// One winner: { branch, output }.
export const confirm = defineTask('confirm', async (first: { branch: number; output: Quote & { booking: string } }) => ({
  ...first.output,
  via: first.branch === 0 ? 'eu' : 'us',
}));

export const quotes = defineWorkflow<Parcel>('quotes')
  .parallel([quoteFrom('fast', 1.2, 100), quoteFrom('cheap', 0.9, 300), quoteFrom('slow', 0.5, 30_000)], { join: { quorum: 2 }, rest: 'cancel' })
  .then(cheapest)
  .parallel([bookAt('eu'), bookAt('us')], { join: 'any', rest: 'finish' })   // the other booking still completes (and is recorded)
  .then(confirm)
  .build();
