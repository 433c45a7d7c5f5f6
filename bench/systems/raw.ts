/**
 * The raw-SQL ceiling: no framework, the least a correct queue must do.
 * A jobs table with a partial index on unclaimed rows; the worker claims up
 * to its free slots plus 10 of prefetch (Baton's default when this was written), at most 500, in
 * one statement
 *   update ... where id in (select id ... order by id for update skip locked limit B) returning
 * and deletes finished jobs in batches (2 ms window, at most 500, 2 in
 * flight), as Baton's committer does. Follow-up jobs (chain steps, fan-out
 * joins) are inserted by the same statement that deletes their parents.
 * LISTEN wakes an idle worker; a 1 s poll is the fallback.
 * A unit is counted when the delete that finished it returned: a job, a
 * chain's last step, a fan-out's join. S0 and S7 enqueue with plain inserts
 * (one row, or a JSON array of rows) that notify the worker.
 */
import pLimit from 'p-limit';
import pg from 'pg';
import { BENCH_SQL, CHAIN_STEPS, FAN_BRANCHES, PAD_SQL, type E2eInput, type System, type Workload } from './types.ts';
import { preciseNow } from '../lib/stats.ts';

const PREFETCH = 10;
const MAX_CLAIM = 500;
const WINDOW_MS = 2;
const MAX_IN_FLIGHT = 2;

const SCHEMA = `
create table bench_jobs (id bigserial primary key, kind text not null, payload jsonb not null, locked_at timestamptz);
create index bench_jobs_ready on bench_jobs (id) where locked_at is null;
create table bench_fan (wf int primary key, remaining int not null);`;

const CLAIM = `update bench_jobs j set locked_at = now()
  where j.id in (select id from bench_jobs where locked_at is null order by id for update skip locked limit $1)
  returning j.id, j.kind, j.payload`;

// Delete finished jobs; insert the next chain steps, and the joins of fan-outs whose last branch finished.
const COMPLETE = `with done as (
    delete from bench_jobs where id = any($1::bigint[]) returning kind, payload
  ), fan as (
    update bench_fan f set remaining = f.remaining - x.n
    from (select (payload->>'wf')::int as wf, count(*)::int as n from done where kind = 'branch' group by 1) x
    where f.wf = x.wf returning f.wf, f.remaining
  ), next as (
    insert into bench_jobs (kind, payload)
    select 'chain', jsonb_build_object('wf', (payload->>'wf')::int, 'step', (payload->>'step')::int + 1)
    from done where kind = 'chain' and (payload->>'step')::int < ${CHAIN_STEPS}
    union all
    select 'join', jsonb_build_object('wf', wf) from fan where remaining = 0
    returning 1
  )
  select pg_notify('bench_jobs', '') from (select 1 from next limit 1) x`;

const BULK: Record<Workload, string[]> = {
  noop: [`insert into bench_jobs (kind, payload) select 'noop', to_jsonb(i) from generate_series($1::int, $2::int) i`],
  latency: [`insert into bench_jobs (kind, payload) select 'latency', jsonb_build_object('seq', i) from generate_series($1::int, $2::int) i`],
  chain: [`insert into bench_jobs (kind, payload) select 'chain', jsonb_build_object('wf', i, 'step', 1) from generate_series($1::int, $2::int) i`],
  fanout: [
    `insert into bench_fan (wf, remaining) select i, ${FAN_BRANCHES} from generate_series($1::int, $2::int) i`,
    `insert into bench_jobs (kind, payload) select 'branch', jsonb_build_object('wf', i) from generate_series($1::int, $2::int) i, generate_series(1, ${FAN_BRANCHES})`,
  ],
  e2e: [`insert into bench_jobs (kind, payload) select 'e2e', jsonb_build_object('i', i, 't', 0, 'p', 0) from generate_series($1::int, $2::int) i`],
  padded: [`insert into bench_jobs (kind, payload) select 'noop', jsonb_build_object('i', i, 'pad', ${PAD_SQL}) from generate_series($1::int, $2::int) i`],
};

const INSERT_ONE = `with j as (insert into bench_jobs (kind, payload) values ($1, $2::jsonb) returning id)
  select pg_notify('bench_jobs', '') from j`;
const INSERT_MANY = `with j as (insert into bench_jobs (kind, payload) select $1, x from jsonb_array_elements($2::jsonb) x returning 1)
  select pg_notify('bench_jobs', '') from (select 1 from j limit 1) x`;

interface Row {
  id: string;
  kind: string;
  payload: { seq?: number; step?: number } & Partial<E2eInput>;
}

/** Whether finishing this job finishes a unit (a job, a chain's last step, a join; not a branch). */
const isUnit = (row: Row) => (row.kind === 'chain' ? row.payload.step === CHAIN_STEPS : row.kind !== 'branch');

async function runWorker(url: string, concurrency: number, onStart: (row: Row) => void, onCompleted: (n: number) => void) {
  const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'bench:raw' });
  pool.on('error', () => undefined);
  const listener = new pg.Client({ connectionString: url });
  listener.on('error', () => undefined);
  await listener.connect();
  const limit = pLimit(concurrency);
  const capacity = concurrency + PREFETCH;
  let running = true;
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  listener.on('notification', poke);
  await listener.query('listen bench_jobs');

  // Completions: a 2 ms window, at most MAX_IN_FLIGHT deletes at once.
  const pending: { id: string; unit: boolean }[] = [];
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  const flushes = new Set<Promise<void>>();
  const flush = () => {
    timer = undefined;
    if (inFlight >= MAX_IN_FLIGHT || pending.length === 0) return;
    const done = pending.splice(0, MAX_CLAIM);
    inFlight += 1;
    const p = pool
      .query(COMPLETE, [done.map((d) => d.id)])
      .then(() => onCompleted(done.filter((d) => d.unit).length))
      .catch((error: Error) => {
        process.stderr.write(`[raw] complete failed: ${error.message}\n`);
        pending.push(...done);
      })
      .finally(() => {
        inFlight -= 1;
        flushes.delete(p);
        if (pending.length > 0) timer ??= setTimeout(flush, WINDOW_MS);
      });
    flushes.add(p);
  };
  const complete = (row: Row) => {
    pending.push({ id: row.id, unit: isUnit(row) });
    if (pending.length >= MAX_CLAIM) flush();
    else timer ??= setTimeout(flush, WINDOW_MS);
    if (limit.pendingCount === 0 || capacity - limit.activeCount - limit.pendingCount >= capacity / 4) poke();
  };

  const loop = async () => {
    while (running) {
      const want = Math.min(capacity - limit.activeCount - limit.pendingCount, MAX_CLAIM);
      const threshold = limit.pendingCount === 0 ? 1 : Math.max(1, Math.floor(capacity / 4));
      let full = false;
      if (want >= threshold && pending.length <= capacity * 4) {
        try {
          const { rows } = await pool.query<Row>(CLAIM, [want]);
          for (const row of rows) {
            void limit(async () => {
              onStart(row);
              complete(row);
            });
          }
          full = rows.length === want;
        } catch (error) {
          process.stderr.write(`[raw] claim failed: ${(error as Error).message}\n`);
        }
      }
      if (full || !running) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 1_000);
        function done() {
          clearTimeout(t);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  };
  const looping = loop();

  return {
    async stop() {
      running = false;
      poke();
      await looping;
      while (limit.activeCount + limit.pendingCount > 0) await new Promise((r) => setTimeout(r, 5));
      while (pending.length > 0 || flushes.size > 0) {
        flush();
        await Promise.allSettled([...flushes]);
      }
      if (timer) clearTimeout(timer);
      // Claimed but never started (none after onIdle), so nothing to give back.
      await listener.end().catch(() => undefined);
      await pool.end();
    },
  };
}

export const raw: System = {
  name: 'raw',
  describe: `raw SQL: claim up to free slots + ${PREFETCH} (skip locked), batched delete (${WINDOW_MS} ms, ${MAX_IN_FLIGHT} in flight), LISTEN + 1 s poll`,
  workloads: ['noop', 'latency', 'chain', 'fanout', 'e2e', 'padded'],
  countsAt: 'commit',
  enqueueApi: { single: 'insert 1 row + pg_notify', batch: 'insert from a JSON array + pg_notify', sql: 'the same insert' },

  async prepare(url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(SCHEMA);
    } finally {
      await client.end();
    }
  },

  async enqueueBulk(client, workload, units) {
    const chunk = 50_000;
    for (let from = 1; from <= units; from += chunk) {
      for (const sql of BULK[workload]) await client.query(sql, [from, Math.min(units, from + chunk - 1)]);
    }
  },

  async remaining(client) {
    const { rows } = await client.query<{ remaining: number }>(`${BENCH_SQL} count(*)::int as remaining from bench_jobs`);
    return { remaining: rows[0]!.remaining, failed: 0 };
  },

  async openProducer(url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return {
      async enqueue(seq) {
        const { rows } = await client.query<{ id: string }>(
          `with j as (insert into bench_jobs (kind, payload) values ('latency', jsonb_build_object('seq', $1::int)) returning id)
           select id, pg_notify('bench_jobs', '') from j`,
          [seq],
        );
        return rows[0]!.id;
      },
      async isDone(id) {
        const { rows } = await client.query(`${BENCH_SQL} 1 from bench_jobs where id = $1`, [id]);
        return rows.length === 0;
      },
      close: () => client.end(),
    };
  },

  async openEnqueuer(url, task, max) {
    const pool = new pg.Pool({ connectionString: url, max, application_name: 'bench:raw-producer' });
    pool.on('error', () => undefined);
    return {
      async single(input) {
        await pool.query(INSERT_ONE, [task, JSON.stringify(input)]);
      },
      async batch(inputs) {
        await pool.query(INSERT_MANY, [task, JSON.stringify(inputs)]);
      },
      async sql(inputs) {
        await pool.query(INSERT_MANY, [task, JSON.stringify(inputs)]);
      },
      close: () => pool.end(),
    };
  },

  async startWorker(config, hooks) {
    return runWorker(
      config.url,
      config.concurrency,
      (row) => {
        const t = preciseNow();
        hooks.started();
        if (row.kind === 'latency') hooks.sample(row.payload.seq!, t);
        if (row.kind === 'e2e') hooks.endToEnd(row.payload.p!, row.payload.t!);
      },
      (n) => hooks.completed(n),
    );
  },
};
