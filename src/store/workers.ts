/** The worker registry: who runs, where, with which tags and definitions. Heartbeats ride on renewClaims (claims.ts). */
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  tags: string[];
  concurrency: number;
  definitions: string[];
  /** Names of the schedules this worker fires. */
  schedules?: string[];
}

/** A worker counts as live while its heartbeat (renewClaims, every third of the lease) is this recent. */
export function liveWindowMs(claimTtlMs: number): number {
  return Math.max(3 * claimTtlMs, 30_000);
}

export async function registerWorker(ex: Executor, w: WorkerInfo): Promise<void> {
  await query(
    ex,
    `insert into baton.workers (id, host, pid, tags, concurrency, definitions, schedules) values ($1, $2, $3, $4, $5, $6, $7)
     on conflict (id) do update set host = excluded.host, pid = excluded.pid, tags = excluded.tags,
       concurrency = excluded.concurrency, definitions = excluded.definitions, schedules = excluded.schedules, heartbeat_at = now()`,
    [w.id, w.host, w.pid, w.tags, w.concurrency, w.definitions, w.schedules ?? []],
  );
}

export async function deregisterWorker(ex: Executor, workerId: string): Promise<void> {
  await query(ex, `delete from baton.workers where id = $1`, [workerId]);
}

export async function listWorkers(ex: Executor, aliveWithinMs?: number): Promise<(WorkerInfo & { startedAt: Date; heartbeatAt: Date })[]> {
  return query(
    ex,
    `select id, host, pid, tags, concurrency, definitions, started_at as "startedAt", heartbeat_at as "heartbeatAt"
     from baton.workers where $1::bigint is null or heartbeat_at > now() - $1 * interval '1 millisecond' order by started_at`,
    [aliveWithinMs ?? null],
  );
}

/** Fleet-wide counters (refused late results, ...). */
export async function getStats(ex: Executor): Promise<Record<string, number>> {
  const rows = await query<{ key: string; value: number }>(ex, `select key, value from baton.stats`);
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}
