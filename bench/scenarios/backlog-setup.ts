/**
 * Building big backlogs fast, for S4. Enqueueing through baton.enqueue runs
 * about 5,000 jobs/s here, so a million would take minutes: instead a seed of
 * up to SEED jobs goes through the SQL API, and the rest are copies of the
 * seed's workflow and task rows (every column copied as is, ids suffixed), so
 * they are exactly what the API writes, ready_key included.
 */
import type pg from 'pg';
import { progress } from '../lib/stats.ts';
import { batonBulk } from '../systems/baton.ts';

export const SEED = 10_000;
export const GPU_TAG = 'bench-gpu';

async function columns(client: pg.Client, table: string): Promise<string[]> {
  const { rows } = await client.query<{ c: string }>(
    `select column_name as c from information_schema.columns
     where table_schema = 'baton' and table_name = $1 and is_generated = 'NEVER' order by ordinal_position`,
    [table],
  );
  return rows.map((r) => r.c);
}

/**
 * `total` ready no-op jobs; with `taggedHalf`, every second one requires GPU_TAG.
 * Returns the seconds it took.
 */
export async function buildBatonBacklog(client: pg.Client, total: number, taggedHalf: boolean): Promise<number> {
  const t0 = Date.now();
  const seed = Math.min(total, SEED);
  await batonBulk(
    client,
    `select count(*) from generate_series($1::int, $2::int) i,
       baton.enqueue('noop', to_jsonb(i), p_tags => case when $3 and i % 2 = 0 then array[$4::text] end)`,
    seed,
    [taggedHalf, GPU_TAG],
  );
  const copies = Math.floor(total / seed) - 1;
  const rest = total - seed * (copies + 1);
  if (copies > 0 || rest > 0) {
    const wf = await columns(client, 'workflows');
    const tasks = await columns(client, 'tasks');
    const copy = async (limit: string) => {
      // One copy of the seed (or the first `rest` of it) per g.
      await client.query(
        `insert into baton.workflows (${wf.join(', ')})
         select ${wf.map((c) => (c === 'id' ? `s.id || ':' || g` : `s.${c}`)).join(', ')}
         from (select * from baton.workflows where id not like '%:%' order by created_at, id ${limit}) s, generate_series($1::int, $2::int) g`,
        gRange,
      );
      await client.query(
        `insert into baton.tasks (${tasks.join(', ')})
         select ${tasks.map((c) => (c === 'workflow_id' ? `s.workflow_id || ':' || g` : `s.${c}`)).join(', ')}
         from (select t.* from baton.tasks t join (select id from baton.workflows where id not like '%:%' order by created_at, id ${limit}) w
               on w.id = t.workflow_id) s, generate_series($1::int, $2::int) g`,
        gRange,
      );
    };
    let gRange: [number, number] = [1, 0];
    for (let g = 1; g <= copies; g += 10) {
      gRange = [g, Math.min(copies, g + 9)];
      await copy('');
      progress(`[S4] backlog: ${((gRange[1] + 1) * seed).toLocaleString('en-US')} of ${total.toLocaleString('en-US')} jobs`);
    }
    if (rest > 0) {
      gRange = [copies + 1, copies + 1];
      await copy(`limit ${rest}`);
    }
  }
  await client.query('vacuum analyze');
  return (Date.now() - t0) / 1000;
}

/** How many tasks are ready. */
export async function readyCount(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from baton.tasks where status = 'ready'`);
  return rows[0]!.n;
}
