/** retry: one failed or cancelled instance by id, or many by status, name and end time. */
import { UsageError, ValidationError } from '../../errors.ts';
import { parseDuration } from '../../workflow/duration.ts';
import { intOption, parse } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { safe } from '../format.ts';
import { withClient } from './instances.ts';

const retryFlags = {
  status: { type: 'string', value: 'S', help: 'retry every instance with this status instead of one id: failed, cancelled, or failed,cancelled' },
  name: { type: 'string', value: 'WORKFLOW', help: 'with --status: only instances of this workflow (or task)' },
  since: { type: 'string', value: 'T', help: 'with --status: only instances that ended at or after T: a duration ago (30m, 2h, 7d) or an ISO time' },
  limit: { type: 'string', value: 'N', help: 'with --status: at most this many, oldest end first, 1 to 10000 (default 1000)' },
  json: jsonOption,
} as const;

function since(value: string): Date {
  if (/^\d{4}-\d\d-\d\d/.test(value)) {
    const at = new Date(value);
    if (Number.isNaN(at.getTime())) throw new ValidationError(`--since is not a valid time (got "${value}")`);
    return at;
  }
  return new Date(Date.now() - parseDuration(value, '--since'));
}

export const retryCommand: Command = {
  args: '[id]',
  options: retryFlags,
  summary: 'run a failed or cancelled instance again from its failed steps (or many: --status failed [--name W] [--since T])',
  async run(args, output) {
    const { values, positionals } = parse(args, retryFlags, { names: ['id'], min: 0 });
    const id = positionals[0];
    const filters = (['status', 'name', 'since', 'limit'] as const).filter((f) => values[f] !== undefined);
    if (id !== undefined && filters.length > 0) throw new UsageError(`give an id or --status, not both (--${filters[0]} with an id)`);
    if (id === undefined && values.status === undefined) throw new UsageError('missing <id> (or --status failed|cancelled to retry many)');
    return withClient(async (client) => {
      if (id !== undefined) {
        const r = await client.retry(id);
        if (values.json) output.out(JSON.stringify({ id: r.id, was: r.was, steps: r.steps, children: r.children }, null, 2));
        else {
          const children = r.children.length ? `; child instances ${r.children.map(safe).join(', ')}` : '';
          output.out(`retried ${safe(id)} (was ${r.was}): steps ${r.steps.map(safe).join(', ')}${children}`);
        }
        return 0;
      }
      const statuses = String(values.status).split(',').map((s) => s.trim()) as ('failed' | 'cancelled')[];
      const result = await client.retryMany({
        status: statuses,
        ...(values.name !== undefined ? { name: values.name } : {}),
        ...(values.since !== undefined ? { since: since(values.since) } : {}),
        ...(values.limit !== undefined ? { limit: intOption(values.limit, 'limit', 1, 10_000)! } : {}),
      });
      if (values.json) output.out(JSON.stringify(result, null, 2));
      else {
        output.out(`retried ${result.retried.length} instance(s)${result.retried.length ? `: ${result.retried.map(safe).join(', ')}` : ''}`);
        for (const s of result.skipped) output.err(`baton: skipped ${safe(s.id)}: ${safe(s.reason)}`);
      }
      return 0;
    });
  },
};
