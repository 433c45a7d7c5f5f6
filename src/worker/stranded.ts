/**
 * At start-up, after registering, a worker says when instances of the workflows it runs are left
 * under a shape that no live worker (itself included) still has: what happens when a deploy
 * changes a workflow's shape without keeping the old version. Those instances wait, silently,
 * until a worker that exports the old shape runs; this warning and `baton definitions` say so.
 */
import type pg from 'pg';
import { listDefinitions } from '../store/definitions.ts';
import { liveWindowMs } from '../store/workers.ts';
import type { Logger } from '../types.ts';
import type { Workflow } from '../workflow/builder.ts';

export async function warnStranded(pool: pg.Pool, defs: Iterable<Workflow>, claimTtlMs: number, log: Logger): Promise<void> {
  const names = [...new Set([...defs].map((d) => d.name))];
  try {
    const stranded = (await listDefinitions(pool, { names, aliveWithinMs: liveWindowMs(claimTtlMs) })).filter((d) => d.inFlight > 0 && d.liveWorkers === 0);
    for (const d of stranded) {
      log.warn(
        { definition: d.hash, name: d.name, version: d.version, inFlight: d.inFlight },
        `${d.inFlight} instance(s) of ${d.name} run definition ${d.hash} (version ${d.version}), which no live worker has: ` +
          'they wait until a worker that still exports that version runs (keep the old version exported until they finish; see baton definitions)',
      );
    }
  } catch (error) {
    log.debug({ err: error }, 'could not look for stranded definitions');
  }
}
