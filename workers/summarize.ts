// A long task that streams its output as it goes: here, words of a summary, as a model streams
// tokens. Follow it live while it runs:
//
//   npm run baton -- enqueue summarize '{"text":"Baton runs durable jobs on PostgreSQL"}'
//   npm run baton -- tail <id>             // or: for await (const f of client.tail(id)) ...
//
// Frames are batched (one round trip every few ms, not one per word) and stored under the
// attempt's claim; all of them are stored before the result.
import { defineTask } from 'baton';

export const summarize = defineTask('summarize', async (input: { text: string }, ctx) => {
  const words = input.text.split(/\s+/).filter(Boolean);
  for (const word of words) {
    void ctx.stream.write(word);                  // not awaited: batched; a failed write fails the attempt
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (ctx.signal.aborted) break;
  }
  await ctx.stream.write({ done: true, words: words.length });   // awaited: stored when it resolves
  return { words: words.length };
});
