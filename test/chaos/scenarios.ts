/**
 * The fault scenarios. Each runs the mixed load on a fresh fleet, injects one
 * fault, waits for every instance to end, and reports: outcomes against
 * expectations, invariant violations, worker crashes, refusals, recovery times.
 */
import pg from 'pg';
import type { Violation } from '../../src/store/check.ts';
import { Fleet, percentile, type WorkerProc } from './harness.ts';
import { MIX } from './workflows.ts';

export interface Size {
  /** Ordinary instances per scenario. */
  workflows: number;
  /** Length of a fault phase. */
  phaseMs: number;
  /** Give up waiting after this long. */
  settleMs: number;
}

export const FULL: Size = { workflows: 2_000, phaseMs: 10_000, settleMs: 240_000 };
export const SHORT: Size = { workflows: 150, phaseMs: 3_000, settleMs: 90_000 };

export interface ScenarioResult {
  scenario: string;
  fault: string;
  workflows: number;
  settledMs: number;
  unfinished: string[];
  wrong: string[];
  violations: Violation[];
  /** Worker exits nobody asked for (the poison scenario expects some). */
  crashes: number;
  refusals: number;
  ttlMs: number;
  recovery?: { samples: number; p50Ms: number; maxMs: number };
  notes: Record<string, unknown>;
}

type Scenario = (fleet: Fleet, size: Size) => Promise<Partial<ScenarioResult> & { ids: Map<string, { workflow: string; expected: unknown }> }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function anyWorker(fleet: Fleet): WorkerProc {
  return fleet.procs[Math.floor(Math.random() * fleet.procs.length)]!;
}

/**
 * The worker that holds the most running claims now, waiting up to 10 s for one to hold any. A
 * worker picked at random could hold none at that moment (the load moves fast on a fast machine),
 * and then freezing it leaves no late result to refuse.
 */
async function holdingMostClaims(fleet: Fleet): Promise<WorkerProc> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await fleet.admin.query<{ worker: string }>(
      `select claimed_by as worker from baton.tasks where status = 'running' group by claimed_by order by count(*) desc`,
    );
    for (const r of rows) {
      const proc = fleet.procs.find((p) => p.workerId === r.worker);
      if (proc) return proc;
    }
    if (Date.now() > deadline) throw new Error('no worker of the fleet held a claim for 10 s: nothing to freeze');
    await sleep(20);
  }
}

export const scenarios: Record<string, { fault: string; options?: ConstructorParameters<typeof Fleet>[0]; run: Scenario }> = {
  kill: {
    fault: 'SIGKILL a worker every 3 s (it is restarted), while work remains',
    async run(fleet, size) {
      const ids = await fleet.load(size.workflows, 'kill');
      const kills: { pid: number; at: number }[] = [];
      const until = Date.now() + Math.max(size.phaseMs, 6_000);
      await sleep(1_000);
      while (Date.now() < until) {
        const victim = anyWorker(fleet);
        if (victim) kills.push({ pid: victim.proc.pid!, at: fleet.kill(victim) });
        await sleep(3_000);
      }
      const settled = await fleet.settle(ids, size.settleMs);
      const rec = await fleet.recoveries(kills);
      return {
        ids,
        settledMs: settled.ms,
        unfinished: settled.unfinished,
        recovery: { samples: rec.length, p50Ms: Math.round(percentile(rec, 50)), maxMs: Math.round(rec.at(-1) ?? NaN) },
        notes: { kills: kills.length },
      };
    },
  },

  stop: {
    fault: "SIGSTOP the worker holding the most claims for TTL + 2 s, then SIGCONT",
    async run(fleet, size) {
      const ids = await fleet.load(size.workflows, 'stop');
      await sleep(1_000);
      const victim = await holdingMostClaims(fleet);
      const before = await fleet.refusedCount();
      victim.proc.kill('SIGSTOP');
      await sleep(fleet.ttlMs + 2_000);
      victim.proc.kill('SIGCONT');
      const settled = await fleet.settle(ids, size.settleMs);
      await sleep(500);
      return {
        ids,
        settledMs: settled.ms,
        unfinished: settled.unfinished,
        notes: { refusedInDatabase: (await fleet.refusedCount()) - before, refusedByThatWorker: victim.output.filter((l) => l.startsWith('refused ')).length },
      };
    },
  },

  'restart-postgres': {
    fault: 'restart PostgreSQL (fast shutdown, down 1 s) mid-run',
    async run(fleet, size) {
      const ids = await fleet.load(size.workflows, 'pgrestart');
      await sleep(1_500);
      const t0 = Date.now();
      await fleet.restartServer(1_000);
      const restartMs = Date.now() - t0;
      const settled = await fleet.settle(ids, size.settleMs);
      return { ids, settledMs: settled.ms, unfinished: settled.unfinished, notes: { restartMs, workerProcesses: fleet.procs.length } };
    },
  },

  'terminate-backends': {
    fault: "pg_terminate_backend on the workers' connections every 250 ms",
    async run(fleet, size) {
      const ids = await fleet.load(size.workflows, 'term');
      const killer = new pg.Client({ connectionString: fleet.url });
      await killer.connect();
      let terminated = 0;
      const until = Date.now() + size.phaseMs;
      while (Date.now() < until) {
        const { rows } = await killer.query<{ n: number }>(
          `select count(*)::int as n from (select pg_terminate_backend(pid) from pg_stat_activity
           where application_name like 'baton:worker%' and pid <> pg_backend_pid()) t`,
        );
        terminated += rows[0]!.n;
        await sleep(250);
      }
      await killer.end();
      const settled = await fleet.settle(ids, size.settleMs);
      return { ids, settledMs: settled.ms, unfinished: settled.unfinished, notes: { terminated } };
    },
  },

  'idle-in-transaction': {
    fault: 'a session idle in transaction (holding back vacuum) for a phase, under a steady load',
    async run(fleet, size) {
      const ids = new Map<string, { workflow: string; expected: unknown }>();
      // A steady producer near capacity (15 five-step chains every 200 ms: ~375 tasks/s; three
      // workers of 16 slots running 20-120 ms steps manage ~650) makes the phases comparable.
      let producing = true;
      let wave = 0;
      const perTick = 15;
      const producer = (async () => {
        while (producing) {
          const more = await fleet.load(perTick, `idle-w${wave++}`, { mix: [{ ...MIX[0]!, share: 1 }] });
          for (const [k, v] of more) ids.set(k, v);
          await sleep(200);
        }
      })();
      const window = 2_000;
      await sleep(3_000);
      const baseline = await fleet.rate(window);
      const holder = new pg.Client({ connectionString: fleet.url });
      await holder.connect();
      await holder.query('begin');
      await holder.query('select txid_current()');
      await sleep(size.phaseMs);
      const during = await fleet.rate(window);
      await holder.query('rollback');
      await holder.end();
      await sleep(3_000);
      const after = await fleet.rate(window);
      producing = false;
      await producer;
      const settled = await fleet.settle(ids, size.settleMs);
      return {
        ids,
        settledMs: settled.ms,
        unfinished: settled.unfinished,
        notes: { tasksPerSecond: { baseline: Math.round(baseline), during: Math.round(during), after: Math.round(after) } },
      };
    },
  },

  'idle-connections': {
    fault: '300 idle connections held by another client (max_connections 330)',
    options: { maxConnections: 330 },
    async run(fleet, size) {
      const ids = await fleet.load(size.workflows, 'conns');
      await sleep(500);
      const hogs: pg.Client[] = [];
      let refused = 0;
      for (let i = 0; i < 300; i++) {
        const c = new pg.Client({ connectionString: fleet.url });
        c.on('error', () => undefined);
        try {
          await c.connect();
          hogs.push(c);
        } catch {
          refused += 1;
        }
      }
      const during = await (async () => {
        await sleep(size.phaseMs);
        return fleet.rate(Math.min(size.phaseMs, 5_000));
      })();
      await Promise.all(hogs.map((c) => c.end().catch(() => undefined)));
      const settled = await fleet.settle(ids, size.settleMs);
      return { ids, settledMs: settled.ms, unfinished: settled.unfinished, notes: { held: hogs.length, refusedToHog: refused, tasksPerSecondWhileHeld: during } };
    },
  },

  poison: {
    fault: 'a task that SIGKILLs its own process on every attempt',
    async run(fleet, size) {
      const ids = await fleet.load(size.workflows, 'poison', { poison: 2 });
      const settled = await fleet.settle(ids, size.settleMs);
      return { ids, settledMs: settled.ms, unfinished: settled.unfinished };
    },
  },

  hang: {
    fault: 'a handler that never settles and ignores its AbortSignal (timeout 500 ms)',
    async run(fleet, size) {
      const ids = await fleet.load(size.workflows, 'hang', { hang: 3 });
      const settled = await fleet.settle(ids, size.settleMs);
      return { ids, settledMs: settled.ms, unfinished: settled.unfinished, notes: { timeoutsReported: fleet.timeouts.length } };
    },
  },
};

export async function runScenario(name: string, size: Size, log: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const def = scenarios[name];
  if (!def) throw new Error(`no scenario "${name}"`);
  const fleet = new Fleet({ ...def.options, log });
  await fleet.start();
  try {
    log(`${name}: ${def.fault}`);
    const r = await def.run(fleet, size);
    const { wrong, failedWith } = await fleet.verify(r.ids);
    const violations = await fleet.check();
    return {
      scenario: name,
      fault: def.fault,
      workflows: r.ids.size,
      settledMs: r.settledMs ?? 0,
      unfinished: r.unfinished ?? [],
      wrong,
      violations,
      crashes: fleet.crashes.length,
      refusals: await fleet.refusedCount(),
      ttlMs: fleet.ttlMs,
      ...(r.recovery ? { recovery: r.recovery } : {}),
      notes: { ...r.notes, failedWith, ...(fleet.crashes.length > 0 ? { crashed: fleet.crashes } : {}) },
    };
  } finally {
    await fleet.stop();
  }
}
