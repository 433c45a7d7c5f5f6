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
}

/** Register (or refresh) definitions; the highest version of a name (the newest shape among equals) is what SQL callers start. */
export async function registerDefinitions(ex: Executor, defs: DefinitionRecord[]): Promise<void> {
  if (defs.length === 0) return;
  await query(
    ex,
    `insert into baton.definitions (name, hash, kind, version, graph, plan)
     select d.name, d.hash, d.kind, d.version, d.graph, d.plan
     from jsonb_to_recordset($1::jsonb) as d(name text, hash text, kind text, version integer, graph jsonb, plan jsonb)
     on conflict (name, hash) do update set graph = excluded.graph, plan = excluded.plan, kind = excluded.kind,
       version = excluded.version, last_seen = now()`,
    [JSON.stringify(defs)],
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
