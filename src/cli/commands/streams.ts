/** tail: follow an instance's output stream (ctx.stream.write) live until the instance ends. */
import { intOption, parse } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { safe } from '../format.ts';
import { withClient } from './instances.ts';

const tailFlags = {
  from: { type: 'string', value: 'SEQ', help: 'only frames after this seq (default 0: the whole stream, then live)' },
  json: { ...jsonOption, help: 'one JSON line per frame: {seq, taskKey, attempt, frame, at}' },
} as const;

export const tailCommand: Command = {
  args: '<id>',
  options: tailFlags,
  summary: "follow an instance's output stream live until it ends (a text frame as a line, others as JSON)",
  async run(args, output) {
    const { values, positionals } = parse(args, tailFlags, { names: ['id'], min: 1 });
    const id = positionals[0]!;
    const from = intOption(values.from, 'from', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    return withClient(async (client) => {
      for await (const f of client.tail(id, { from })) {
        if (values.json) output.out(JSON.stringify(f));
        else output.out(typeof f.frame === 'string' ? safe(f.frame) : safe(JSON.stringify(f.frame)));
      }
      const view = await client.get(id);
      if (!view || view.status === 'completed') return 0;
      output.err(`baton: workflow ${safe(id)} ${view.status}: ${safe((view.error as { message?: string } | null)?.message ?? 'no error recorded')}`);
      return 1;
    });
  },
};
