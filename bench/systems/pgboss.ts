/**
 * pg-boss 10 (the last line that runs on Node 20), tuned as its docs suggest
 * for throughput:
 *   - batch fetch: each work() loop fetches up to BATCH jobs per round trip,
 *     and pg-boss completes the whole batch in one statement;
 *   - TEAMS work() loops per queue (v10 has no teamSize), all sharing one
 *     limiter of `concurrency` slots, so at most 24 handlers run at once;
 *   - the shortest polling interval it accepts (0.5 s), and a loop that got a
 *     full batch asks again at once (boss.notifyWorker) instead of sleeping
 *     out the interval;
 *   - supervise (maintenance) and schedule (cron) off; no state monitor.
 * pg-boss has no LISTEN/NOTIFY, so an idle queue is found by polling.
 * A unit is counted when a work() batch handler returns (pg-boss then completes
 * the batch in one statement, and tells nobody): a job, a chain's last step, a
 * fan-out's join. S0 and S7 enqueue with boss.send() and boss.insert();
 * pg-boss has no SQL API for enqueueing, so S0's SQL path is not supported.
 */
import pLimit from 'p-limit';
import PgBoss from 'pg-boss';
import { BENCH_SQL, CHAIN_STEPS, FAN_BRANCHES, PAD, type System, type Workload } from './types.ts';
import { preciseNow } from '../lib/stats.ts';

const TEAMS = 4;
const BATCH = 100;
const POLL_SECONDS = 0.5;

const QUEUES: Record<Workload, string[]> = {
  noop: ['noop'],
  latency: ['latency'],
  chain: ['chain'],
  fanout: ['branch', 'join'],
  e2e: ['e2e'],
  padded: ['noop'],
};

const options = (url: string, max = 10) => ({ connectionString: url, supervise: false, schedule: false, migrate: false, max });

type Job = PgBoss.Job<Record<string, number>>;

/** How many of a handled batch are finished units. */
function units(queue: string, jobs: Job[]): number {
  if (queue === 'branch') return 0;
  if (queue === 'chain') return jobs.filter((j) => j.data.step === CHAIN_STEPS).length;
  return jobs.length;
}

export const pgboss: System = {
  name: 'pgboss',
  describe: `pg-boss 10 with ${TEAMS} work() loops per queue, batchSize ${BATCH}, polling ${POLL_SECONDS} s (loops staggered) + refetch after a full batch, supervise/schedule off`,
  workloads: ['noop', 'latency', 'chain', 'fanout', 'e2e', 'padded'],
  countsAt: 'handler',
  enqueueApi: { single: 'boss.send()', batch: 'boss.insert()' },

  async prepare(url) {
    const boss = new PgBoss({ ...options(url), migrate: true });
    boss.on('error', (e) => process.stderr.write(`[pg-boss] ${e.message}\n`));
    await boss.start();
    for (const name of ['noop', 'latency', 'chain', 'branch', 'join', 'e2e']) await boss.createQueue(name);
    await boss.getDb().executeSql('create table bench_fan (wf int primary key, remaining int not null)', []);
    await boss.stop({ graceful: false });
  },

  async enqueueBulk(client, workload, units) {
    // boss.insert() on the parent's connection (pg-boss's `db` option), in chunks.
    const boss = new PgBoss({ db: { executeSql: (text, values) => client.query(text, values) }, supervise: false, schedule: false, migrate: false });
    await boss.start();
    const rows: PgBoss.JobInsert[] = [];
    const flush = async () => {
      if (rows.length > 0) await boss.insert(rows.splice(0));
    };
    if (workload === 'fanout') {
      await client.query(`insert into bench_fan (wf, remaining) select i, ${FAN_BRANCHES} from generate_series(1, $1::int) i`, [units]);
    }
    for (let i = 1; i <= units; i++) {
      if (workload === 'noop') rows.push({ name: 'noop', data: { i } });
      else if (workload === 'padded') rows.push({ name: 'noop', data: { i, pad: PAD } });
      else if (workload === 'latency') rows.push({ name: 'latency', data: { seq: i } });
      else if (workload === 'chain') rows.push({ name: 'chain', data: { wf: i, step: 1 } });
      else if (workload === 'e2e') rows.push({ name: 'e2e', data: { i, t: 0, p: 0 } });
      else for (let b = 0; b < FAN_BRANCHES; b++) rows.push({ name: 'branch', data: { wf: i } });
      if (rows.length >= 5_000) await flush();
    }
    await flush();
    await boss.stop({ graceful: false, close: false });
  },

  async remaining(client) {
    const { rows } = await client.query<{ remaining: number; failed: number }>(
      `${BENCH_SQL} (select count(*) from pgboss.job where state < 'completed')::int as remaining,
              (select count(*) from pgboss.job where state = 'failed')::int as failed`,
    );
    return rows[0]!;
  },

  async openProducer(url) {
    const boss = new PgBoss(options(url));
    boss.on('error', (e) => process.stderr.write(`[pg-boss] ${e.message}\n`));
    await boss.start();
    const db = boss.getDb();
    return {
      async enqueue(seq) {
        const id = await boss.send('latency', { seq });
        if (!id) throw new Error('pg-boss send returned no id');
        return id;
      },
      async isDone(id) {
        const { rows } = await db.executeSql(`${BENCH_SQL} state from pgboss.job where name = 'latency' and id = $1`, [id]);
        return rows[0]?.state === 'completed';
      },
      close: () => boss.stop({ graceful: false }),
    };
  },

  async openEnqueuer(url, task, pool) {
    const boss = new PgBoss(options(url, pool));
    boss.on('error', (e) => process.stderr.write(`[pg-boss] ${e.message}\n`));
    await boss.start();
    return {
      async single(input) {
        if (!(await boss.send(task, input))) throw new Error('pg-boss send returned no id');
      },
      async batch(inputs) {
        await boss.insert(inputs.map((data) => ({ name: task, data })));
      },
      close: () => boss.stop({ graceful: false }),
    };
  },

  async startWorker(config, hooks) {
    const boss = new PgBoss(options(config.url));
    boss.on('error', (e) => process.stderr.write(`[pg-boss] ${e.message}\n`));
    await boss.start();
    const db = boss.getDb();
    const limit = pLimit(config.concurrency);

    // Per-job work; what a batch must enqueue next is collected and inserted once per batch.
    const handle = async (queue: string, jobs: Job[]) => {
      const next: PgBoss.JobInsert[] = [];
      await Promise.all(
        jobs.map((job) =>
          limit(async () => {
            const t = preciseNow();
            hooks.started();
            if (queue === 'latency') hooks.sample(job.data.seq!, t);
            if (queue === 'e2e') hooks.endToEnd(job.data.p!, job.data.t!);
            if (queue === 'chain' && job.data.step! < CHAIN_STEPS) next.push({ name: 'chain', data: { wf: job.data.wf!, step: job.data.step! + 1 } });
          }),
        ),
      );
      if (queue === 'branch') {
        const { rows } = await db.executeSql(
          `update bench_fan f set remaining = f.remaining - x.n
           from (select wf, count(*)::int as n from unnest($1::int[]) wf group by wf) x
           where f.wf = x.wf returning f.wf, f.remaining`,
          [jobs.map((j) => j.data.wf)],
        );
        for (const r of rows as { wf: number; remaining: number }[]) if (r.remaining === 0) next.push({ name: 'join', data: { wf: r.wf } });
      }
      if (next.length > 0) await boss.insert(next);
    };

    for (const queue of QUEUES[config.workload]) {
      for (let team = 0; team < TEAMS; team++) {
        // Staggered, so that the loops' polls of an idle queue spread over the interval.
        if (team > 0) await new Promise((r) => setTimeout(r, (POLL_SECONDS * 1000) / TEAMS));
        let id = '';
        id = await boss.work<Record<string, number>>(queue, { batchSize: BATCH, pollingIntervalSeconds: POLL_SECONDS }, async (jobs) => {
          await handle(queue, jobs);
          hooks.completed(units(queue, jobs));
          if (jobs.length === BATCH) boss.notifyWorker(id);
        });
      }
    }
    return { stop: () => boss.stop({ graceful: true, wait: true, timeout: 5_000 }) };
  },
};
