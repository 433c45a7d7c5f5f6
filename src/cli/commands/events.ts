/** publish: a keyed event, by name and key, for whichever instance waits on them (client.publish). */
import { MAX_EVENT_RETENTION_MS } from '../../workflow/keyed-events.ts';
import { intOption, parse, parseJsonArg } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { safe } from '../format.ts';
import { withClient } from './instances.ts';

const flags = {
  'retention-ms': { type: 'string', value: 'MS', help: 'how long the event waits for a waiter, in ms (default: BATON_EVENT_RETENTION_MS, 7 days)' },
  json: jsonOption,
} as const;

export const publishCommand: Command = {
  args: '<event> <key> [json]',
  options: flags,
  summary: 'publish a keyed event: the instance waiting on this name and key takes it (held until one waits, within its retention)',
  async run(args, output) {
    const { values, positionals } = parse(args, flags, { names: ['event', 'key', 'json'], min: 2 });
    const [event, key] = [positionals[0]!, positionals[1]!];
    const payload = parseJsonArg(positionals[2], 'the event payload');
    const retentionMs = intOption(values['retention-ms'], 'retention-ms', 1, MAX_EVENT_RETENTION_MS);
    return withClient(async (client) => {
      const eventId = await client.publish(event, key, payload, retentionMs === undefined ? {} : { retentionMs });
      if (values.json) output.out(JSON.stringify({ event, key, eventId }, null, 2));
      else output.out(`published "${safe(event)}" with key ${safe(key)} (event ${eventId})`);
      return 0;
    });
  },
};
