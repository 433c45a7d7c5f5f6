/**
 * Schedules (baton.schedules): what workers registered, and the last tick each fired.
 * A tick is taken under the schedule's row lock (lockSchedule, then advanceSchedule in the
 * same transaction as the start), so racing workers start it once.
 */
import type { CatchUp, DefinitionKind } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface ScheduleRecord {
  name: string;
  cron: string;
  timezone: string;
  catchUp: CatchUp;
  kind: DefinitionKind;
  workflowName: string;
  definitionHash: string;
  /** The encoded input (jsonb). */
  input: unknown;
  nextTick: Date | null;
}

/** Register (or refresh) schedules; returns when each was first registered and its last tick. */
export async function registerSchedules(ex: Executor, records: ScheduleRecord[]): Promise<Map<string, { firstSeen: Date; lastTick: Date | null }>> {
  if (records.length === 0) return new Map();
  const rows = await query<{ name: string; first_seen: Date; last_tick: Date | null }>(
    ex,
    `insert into baton.schedules (name, cron, timezone, catch_up, kind, workflow_name, definition_hash, input, next_tick)
     select s.name, s.cron, s.timezone, s."catchUp", s.kind, s."workflowName", s."definitionHash", s.input, s."nextTick"
     from jsonb_to_recordset($1::jsonb) as s(name text, cron text, timezone text, "catchUp" text, kind text,
       "workflowName" text, "definitionHash" text, input jsonb, "nextTick" timestamptz)
     on conflict (name) do update set cron = excluded.cron, timezone = excluded.timezone, catch_up = excluded.catch_up,
       kind = excluded.kind, workflow_name = excluded.workflow_name, definition_hash = excluded.definition_hash,
       input = excluded.input, next_tick = excluded.next_tick, last_seen = now()
     returning name, first_seen, last_tick`,
    [JSON.stringify(records)],
  );
  return new Map(rows.map((r) => [r.name, { firstSeen: r.first_seen, lastTick: r.last_tick }]));
}

/** Lock a schedule's row (inside a transaction): the last tick it fired, or null when the row is gone. */
export async function lockSchedule(ex: Executor, name: string): Promise<{ firstSeen: Date; lastTick: Date | null } | null> {
  const rows = await query<{ first_seen: Date; last_tick: Date | null }>(
    ex,
    `select first_seen, last_tick from baton.schedules where name = $1 for update`,
    [name],
  );
  return rows[0] ? { firstSeen: rows[0].first_seen, lastTick: rows[0].last_tick } : null;
}

/** Record a handled tick (never moves last_tick back), and the instance it started if any. */
export async function advanceSchedule(ex: Executor, name: string, p: { lastTick: Date; runId: string | null; nextTick: Date | null }): Promise<void> {
  await query(
    ex,
    `update baton.schedules set last_tick = greatest(last_tick, $2), next_tick = $4,
       last_run_id = coalesce($3, last_run_id), last_run_at = case when $3::text is null then last_run_at else now() end
     where name = $1`,
    [name, p.lastTick, p.runId, p.nextTick],
  );
}

/** What `baton schedules` shows: the schedule as defined, and what became of its ticks. */
export interface ScheduleView extends Pick<ScheduleRecord, 'name' | 'cron' | 'timezone' | 'catchUp' | 'kind' | 'workflowName' | 'nextTick'> {
  lastTick: Date | null;
  lastRunId: string | null;
  lastRunAt: Date | null;
  firstSeen: Date;
  lastSeen: Date;
  /** Live workers that fire it (heartbeat within the window); 0 means it does not fire (removed from code, or no worker runs). */
  workers: number;
}

/** Every schedule, by name, with how many live workers fire it. */
export async function listSchedules(ex: Executor, aliveWithinMs: number): Promise<ScheduleView[]> {
  return query<ScheduleView & { workers: number }>(
    ex,
    `select s.name, s.cron, s.timezone, s.catch_up as "catchUp", s.kind, s.workflow_name as "workflowName",
       s.last_tick as "lastTick", s.last_run_id as "lastRunId", s.last_run_at as "lastRunAt", s.next_tick as "nextTick",
       s.first_seen as "firstSeen", s.last_seen as "lastSeen",
       (select count(*)::int from baton.workers w
        where s.name = any(w.schedules) and w.heartbeat_at > now() - $1 * interval '1 millisecond') as workers
     from baton.schedules s order by s.name`,
    [aliveWithinMs],
  );
}
