import type { DefinitionKind } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface DefinitionRecord {
  name: string;
  hash: string;
  kind: DefinitionKind;
  version: number;
  graph: unknown;
  plan: unknown;
  /** Its tasks' concurrency and rate limits (nulls for none). */
  limits?: { name: string; concurrency: number | null; concurrencyKeyed: boolean; rate: number | null; ratePeriodMs: number | null; rateKeyed: boolean }[];
}

/**
 * Register (or refresh) definitions; the highest version of a name (the newest shape among equals) is what SQL callers start.
 * Their tasks' limits go to baton.task_limits: the newest registration of a task name wins.
 */
export async function registerDefinitions(ex: Executor, defs: DefinitionRecord[]): Promise<void> {
  if (defs.length === 0) return;
  const limits = [...new Map(defs.flatMap((d) => d.limits ?? []).map((l) => [l.name, l])).values()];
  await query(
    ex,
    `with defs as (
       insert into baton.definitions (name, hash, kind, version, graph, plan)
       select d.name, d.hash, d.kind, d.version, d.graph, d.plan
       from jsonb_to_recordset($1::jsonb) as d(name text, hash text, kind text, version integer, graph jsonb, plan jsonb)
       on conflict (name, hash) do update set graph = excluded.graph, plan = excluded.plan, kind = excluded.kind,
         version = excluded.version, last_seen = now()
     )
     insert into baton.task_limits (name, concurrency, concurrency_keyed, rate, rate_period_ms, rate_keyed)
     select l.name, l.concurrency, l."concurrencyKeyed", l.rate, l."ratePeriodMs", l."rateKeyed"
     from jsonb_to_recordset($2::jsonb) as l(name text, concurrency integer, "concurrencyKeyed" boolean, rate integer,
       "ratePeriodMs" integer, "rateKeyed" boolean)
     order by l.name
     on conflict (name) do update set concurrency = excluded.concurrency, concurrency_keyed = excluded.concurrency_keyed,
       rate = excluded.rate, rate_period_ms = excluded.rate_period_ms, rate_keyed = excluded.rate_keyed, updated_at = now()
     where (baton.task_limits.concurrency, baton.task_limits.concurrency_keyed, baton.task_limits.rate,
            baton.task_limits.rate_period_ms, baton.task_limits.rate_keyed)
       is distinct from (excluded.concurrency, excluded.concurrency_keyed, excluded.rate, excluded.rate_period_ms, excluded.rate_keyed)`,
    [JSON.stringify(defs.map(({ limits: _limits, ...d }) => d)), JSON.stringify(limits)],
  );
}

export async function getDefinition(
  ex: Executor,
  name: string,
  options: { kind?: DefinitionKind; hash?: string } = {},
): Promise<(DefinitionRecord & { firstSeen: Date; lastSeen: Date }) | null> {
  const rows = await query(
    ex,
    `select name, hash, kind, version, graph, plan, first_seen as "firstSeen", last_seen as "lastSeen"
     from baton.definitions
     where name = $1 and ($2::text is null or kind = $2) and ($3::text is null or hash = $3)
     order by version desc, first_seen desc, hash limit 1`,
    [name, options.kind ?? null, options.hash ?? null],
  );
  return (rows[0] as DefinitionRecord & { firstSeen: Date; lastSeen: Date }) ?? null;
}

/** One registered definition, with what an operator needs during a deploy. */
export interface DefinitionSummary {
  name: string;
  kind: DefinitionKind;
  version: number;
  hash: string;
  /** Instances of this definition not finished yet (pending, running or paused). */
  inFlight: number;
  /** Live workers (heartbeat within the window) that registered this hash, so can run its steps. */
  liveWorkers: number;
  /** What a start by name (SQL, CLI, client.start('name')) uses: the highest version, the newest among equals. */
  startsByName: boolean;
  firstSeen: Date;
  lastSeen: Date;
}

/**
 * Every registered definition (or those of one name), highest version first, with its instances in
 * flight and its live workers. Counting in-flight instances reads the unfinished instances (there is
 * no index on status, see listInstances): an operator's query, not one for the hot path.
 */
export async function listDefinitions(ex: Executor, options: { names?: string[]; aliveWithinMs: number }): Promise<DefinitionSummary[]> {
  return query<DefinitionSummary>(
    ex,
    `with defs as (
       select d.*, row_number() over (partition by d.kind, d.name order by d.version desc, d.first_seen desc, d.hash) = 1 as by_name
       from baton.definitions d where $1::text[] is null or d.name = any ($1)
     ), flight as (
       select w.definition_hash as hash, count(*)::int as n from baton.workflows w
       where w.status in ('pending', 'running', 'paused') and ($1::text[] is null or w.name = any ($1))
       group by w.definition_hash
     ), serving as (
       select h.hash, count(*)::int as n
       from baton.workers k cross join lateral unnest(k.definitions) as h(hash)
       where k.heartbeat_at > now() - $2 * interval '1 millisecond'
       group by h.hash
     )
     select d.name, d.kind, d.version, d.hash, coalesce(f.n, 0) as "inFlight", coalesce(s.n, 0) as "liveWorkers",
       d.by_name as "startsByName", d.first_seen as "firstSeen", d.last_seen as "lastSeen"
     from defs d left join flight f on f.hash = d.hash left join serving s on s.hash = d.hash
     order by d.name, d.kind desc, d.version desc, d.first_seen desc, d.hash`,
    [options.names ?? null, options.aliveWithinMs],
  );
}
