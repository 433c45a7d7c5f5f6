/** complete-waitpoint: complete a wait with a waitpoint token alone (client.completeWaitpoint). */
import { readFileSync } from 'node:fs';
import { parse, parseJsonArg } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { safe } from '../format.ts';
import { withClient } from './instances.ts';

const flags = { json: jsonOption } as const;

export const completeWaitpointCommand: Command = {
  args: '<token|-> [json]',
  options: flags,
  summary: 'complete a wait with a waitpoint token and a payload (- reads the token from stdin, out of the process list)',
  async run(args, output) {
    const { values, positionals } = parse(args, flags, { names: ['token', 'json'], min: 1 });
    const token = positionals[0] === '-' ? readFileSync(0, 'utf8').trim() : positionals[0]!;
    const payload = parseJsonArg(positionals[1], 'the payload');
    return withClient(async (client) => {
      const done = await client.completeWaitpoint(token, payload);
      if (values.json) output.out(JSON.stringify(done, null, 2));
      else output.out(`delivered "${safe(done.event)}" to ${safe(done.workflowId)} (event ${done.eventId})`);
      return 0;
    });
  },
};
