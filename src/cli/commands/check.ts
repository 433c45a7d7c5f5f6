import { loadConfig } from '../../config.ts';
import { intOption, parse } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { safe, table } from '../format.ts';

const options = {
  'grace-ms': { type: 'string', value: 'N', help: 'how long (ms) a lease may be past its expiry before it counts (default: two reconciler ticks + 5 s)' },
  json: jsonOption,
} as const;

export const checkCommand: Command = {
  args: '',
  options,
  summary: "verify Baton's invariants on a live or stopped system (exit 1 with the violations)",
  async run(args, output) {
    const { values } = parse(args, options, { names: [], min: 0 });
    const config = loadConfig();
    // A lease may be past its expiry until the reconciler's next tick (and a poll of graphile-worker).
    const grace = intOption(values['grace-ms'], 'grace-ms', 0, 86_400_000) ?? config.reconcileIntervalMs * 2 + 5_000;
    // Loaded here, not at start-up: `baton --help` must not pay for the database layer.
    const [{ openBaton }, { checkInvariants }] = await Promise.all([import('../../db/open.ts'), import('../../store/check.ts')]);
    const db = await openBaton({ config, migrate: false, applicationName: 'baton:check', log: () => undefined, poolSize: 2 });
    try {
      const report = await checkInvariants(db.pool, { expiredGraceMs: grace });
      if (values.json) output.out(JSON.stringify(report, null, 2));
      else if (report.violations.length === 0) output.out(`ok: ${report.instances} instances, ${report.tasks} tasks, no violation`);
      else {
        output.out(table(['INVARIANT', 'INSTANCE', 'STEP', 'DETAIL'], report.violations.map((v) => [v.invariant, safe(v.workflowId), safe(v.taskKey ?? ''), safe(v.detail)])));
        output.err(`baton: ${report.violations.length} violation(s) in ${report.instances} instances`);
      }
      return report.violations.length === 0 ? 0 : 1;
    } finally {
      await db.close();
    }
  },
};
