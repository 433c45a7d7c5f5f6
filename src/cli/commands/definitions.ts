/** `baton definitions`: the registered workflow and task shapes, what runs under each, and who can run it. */
import { silentLogger } from '../../log.ts';
import { parse } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { definitionsTable } from '../format.ts';

const options = {
  name: { type: 'string', value: 'NAME', help: 'only the definitions of this workflow (or task)' },
  json: jsonOption,
} as const;

export const definitionsCommand: Command = {
  args: '',
  options,
  summary: 'definitions by name, version and hash: instances in flight, live workers that run them, what a start by name uses',
  async run(args, output) {
    const { values } = parse(args, options, { names: [], min: 0 });
    // Loaded here, not at start-up: `baton --help` must not pay for the driver and the store.
    const { createClient } = await import('../../client/client.ts');
    const client = await createClient({ logger: silentLogger });
    try {
      const defs = await client.definitions(values.name !== undefined ? { name: values.name } : {});
      if (values.json) output.out(JSON.stringify(defs, null, 2));
      else if (defs.length === 0) output.out(values.name ? `no definition named "${values.name}" is registered` : 'no definitions registered');
      else {
        output.out(definitionsTable(defs));
        const stranded = defs.filter((d) => d.inFlight > 0 && d.liveWorkers === 0);
        if (stranded.length > 0) {
          const n = stranded.reduce((sum, d) => sum + d.inFlight, 0);
          output.err(
            `baton: ${n} instance(s) wait for ${stranded.length === 1 ? 'a definition' : `${stranded.length} definitions`} no live worker has: ` +
              'run a worker that still exports that version (see the README, "Deploying a changed workflow")',
          );
        }
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};
