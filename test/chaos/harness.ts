/**
 * A small Baton fleet for fault injection: a dedicated embedded PostgreSQL
 * (the suite restarts it and changes max_connections, so never a shared
 * server), a database, three supervised worker processes (an exited one is
 * restarted, as systemd or Kubernetes would), the mixed load, and the
 * measurements each scenario reports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../../src/db/embedded.ts';
import { freePort, portTaken } from '../support/server.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createClient, type Client } from '../../src/index.ts';
import { checkInvariants, type Violation } from '../../src/store/check.ts';
import { registerDefinitions } from '../../src/store/definitions.ts';
import { definitionRecord } from '../../src/workflow/definition.ts';
import { ALL, LEDGER_DDL, MIX, hanging, poisoned, waiter } from './workflows.ts';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

export interface FleetOptions {
  workers?: number;
  ttlMs?: number;
  maxConnections?: number;
  port?: number;
  log?: (line: string) => void;
}

export interface WorkerProc {
  slot: number;
  proc: ChildProcess;
  /** Its Baton worker id (tasks.claimed_by of its claims), from its `ready` line. */
  workerId: string;
  output: string[];
  /** The last lines it wrote to stderr (its error log, or what killed it). */
  errTail: string[];
  exited: Promise<number | null>;
}

export class Fleet {
  server!: EmbeddedServer;
  url!: string;
  admin!: pg.Pool;
  client!: Client;
  readonly procs: WorkerProc[] = [];
  /** Every worker process exit that the suite did not cause (a crash). */
  readonly crashes: { slot: number; code: number | null; signal: string | null; at: number; stderr: string[] }[] = [];
  readonly refusals: string[] = [];
  readonly timeouts: string[] = [];
  private dir = '';
  private supervising = true;
  private expectedExits = new Set<ChildProcess>();
  readonly ttlMs: number;
  readonly log: (line: string) => void;

  constructor(private readonly o: FleetOptions = {}) {
    this.ttlMs = o.ttlMs ?? 2_000;
    this.log = o.log ?? (() => undefined);
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'baton-chaos-'));
    // A port the kernel just found free; if something takes it before the server binds, try another.
    for (let attempt = 1; ; attempt++) {
      try {
        this.server = await startEmbedded({
          dataDir: this.dir,
          port: this.o.port ?? (await freePort()),
          database: 'chaos',
          maxConnections: this.o.maxConnections ?? 400,
        });
        break;
      } catch (error) {
        if (this.o.port !== undefined || attempt === 3 || !portTaken(error)) throw error;
      }
    }
    this.url = this.server.url;
    await migrate(this.url);
    this.admin = new pg.Pool({ connectionString: this.url, max: 4 });
    this.admin.on('error', () => undefined);
    await this.admin.query(LEDGER_DDL);
    await registerDefinitions(this.admin, ALL.map(definitionRecord));
    this.client = await createClient({ connectionString: this.url, config: { logLevel: 'silent' } });
    for (let slot = 0; slot < (this.o.workers ?? 3); slot++) await this.spawnWorker(slot);
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      DATABASE_URL: this.url,
      BATON_CLAIM_TTL_MS: String(this.ttlMs),
      BATON_RECONCILE_INTERVAL_MS: '250',
      BATON_POLL_INTERVAL_MS: '500',
      BATON_MAX_LEASE_LOSSES: '3',
      BATON_CONCURRENCY: '16',
      BATON_SHUTDOWN_GRACE_MS: '2000',
      BATON_LOG_LEVEL: process.env.BATON_CHAOS_LOG ? 'debug' : 'error',
    };
  }

  spawnWorker(slot: number): Promise<WorkerProc> {
    return new Promise((resolve, reject) => {
      const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/chaos/worker.ts')], {
        cwd: ROOT,
        env: this.env(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const entry: WorkerProc = { slot, proc, workerId: '', output: [], errTail: [], exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
      let buf = '';
      let ready = false;
      proc.stdout!.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          entry.output.push(line);
          if (line.startsWith('refused ')) this.refusals.push(line.slice(8));
          if (line.startsWith('timeout ')) this.timeouts.push(line.slice(8));
          if (line.startsWith('ready ') && !ready) {
            ready = true;
            entry.workerId = line.slice(6);
            resolve(entry);
          }
        }
      });
      proc.stderr!.on('data', (c) => {
        if (process.env.BATON_CHAOS_LOG) process.stderr.write(c);
        entry.errTail.push(...String(c).split('\n').filter(Boolean));
        entry.errTail.splice(0, Math.max(0, entry.errTail.length - 30));
      });
      proc.on('exit', (code, signal) => {
        const i = this.procs.indexOf(entry);
        if (i >= 0) this.procs.splice(i, 1);
        if (!ready) reject(new Error(`worker ${slot} exited ${code ?? signal} before it was ready`));
        const expected = this.expectedExits.delete(proc);
        if (!expected) this.crashes.push({ slot, code, signal, at: Date.now(), stderr: entry.errTail.slice() });
        if (this.supervising) {
          this.log(`worker ${slot} (pid ${proc.pid}) exited ${code ?? signal}${expected ? '' : ' unexpectedly'}; restarting it`);
          setTimeout(() => void this.spawnWorker(slot).catch(() => undefined), 200);
        }
      });
      this.procs.push(entry);
    });
  }

  /** Kill a worker as a fault (the supervisor restarts it; it does not count as a crash). */
  kill(entry: WorkerProc, signal: NodeJS.Signals = 'SIGKILL'): number {
    this.expectedExits.add(entry.proc);
    entry.proc.kill(signal);
    return Date.now();
  }

  /** Start `count` instances of the ordinary mix, plus `extra` ones; returns their ids by workflow. */
  async load(
    count: number,
    prefix: string,
    extra: { poison?: number; hang?: number; mix?: typeof MIX } = {},
  ): Promise<Map<string, { workflow: string; expected: unknown }>> {
    const ids = new Map<string, { workflow: string; expected: unknown }>();
    let n = 0;
    for (const { workflow, share, output } of extra.mix ?? MIX) {
      const k = Math.round(count * share);
      for (let i = 0; i < k; i++) ids.set(`${prefix}-${workflow.name}-${n++}`, { workflow: workflow.name, expected: output(0) });
    }
    for (let i = 0; i < (extra.poison ?? 0); i++) ids.set(`${prefix}-poison-${i}`, { workflow: poisoned.name, expected: 'failed' });
    for (let i = 0; i < (extra.hang ?? 0); i++) ids.set(`${prefix}-hang-${i}`, { workflow: hanging.name, expected: 'failed' });
    const entries = [...ids.entries()];
    // In slices, through the SQL API, retrying through the faults of the scenario.
    for (let i = 0; i < entries.length; i += 200) {
      const slice = entries.slice(i, i + 200);
      await this.retrying(() =>
        this.admin.query(
          `select baton.start_workflow(x.name, '0'::jsonb, x.id, null, null, 'useExisting') from jsonb_to_recordset($1::jsonb) as x(id text, name text)`,
          [JSON.stringify(slice.map(([id, v]) => ({ id, name: v.workflow })))],
        ),
      );
    }
    const waiting = entries.filter(([, v]) => v.workflow === waiter.name).map(([id]) => id);
    this.sendEvents(waiting);
    return ids;
  }

  /** A separate process sends the events for the waitForEvent instances. */
  private sendEvents(ids: string[]): void {
    if (ids.length === 0) return;
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/chaos/sender.ts'), JSON.stringify(ids), '8000'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: this.url, BATON_LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
    this.senders.push(new Promise((r) => proc.on('exit', r)));
  }

  private readonly senders: Promise<unknown>[] = [];

  async retrying<T>(fn: () => Promise<T>, tries = 60): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (error) {
        if (i >= tries) throw error;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Wait until every instance in `ids` has finished; returns how long it took and what is left. */
  async settle(ids: Map<string, unknown>, timeoutMs: number): Promise<{ ms: number; unfinished: string[] }> {
    const t0 = Date.now();
    const list = [...ids.keys()];
    for (;;) {
      const rows = await this.retrying(() =>
        this.admin.query<{ id: string }>(`select id from baton.workflows where id = any($1) and status not in ('completed', 'failed', 'cancelled')`, [list]),
      );
      if (rows.rows.length === 0 || Date.now() - t0 > timeoutMs) return { ms: Date.now() - t0, unfinished: rows.rows.map((r) => r.id) };
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Outcomes against expectations: ordinary work completed with the right output, poison and hang failed. */
  async verify(ids: Map<string, { workflow: string; expected: unknown }>): Promise<{ wrong: string[]; failedWith: Record<string, string> }> {
    const { rows } = await this.admin.query<{ id: string; status: string; output: unknown; error: { message?: string } | null }>(
      `select id, status, output, error from baton.workflows where id = any($1)`,
      [[...ids.keys()]],
    );
    const wrong: string[] = [];
    const failedWith: Record<string, string> = {};
    for (const r of rows) {
      const want = ids.get(r.id)!;
      if (want.expected === 'failed') {
        if (r.status !== 'failed') wrong.push(`${r.id}: ${r.status}, expected failed`);
        else failedWith[want.workflow] = r.error?.message ?? '';
      } else if (r.status !== 'completed' || JSON.stringify(r.output) !== JSON.stringify(want.expected)) {
        wrong.push(`${r.id}: ${r.status} ${JSON.stringify(r.output)}, expected ${JSON.stringify(want.expected)}${r.error?.message ? ` (${r.error.message})` : ''}`);
      }
    }
    if (rows.length !== ids.size) wrong.push(`${ids.size - rows.length} instances are missing`);
    return { wrong, failedWith };
  }

  async check(): Promise<Violation[]> {
    return (await checkInvariants(this.admin, { expiredGraceMs: 3_000 })).violations;
  }

  /** Completed tasks per second over the last `ms`. */
  async rate(ms: number): Promise<number> {
    const { rows } = await this.retrying(() =>
      this.admin.query<{ n: number }>(`select count(*)::int as n from baton.tasks where finished_at > now() - $1 * interval '1 millisecond' and status = 'completed'`, [ms]),
    );
    return rows[0]!.n / (ms / 1000);
  }

  async refusedCount(): Promise<number> {
    const { rows } = await this.admin.query<{ value: number }>(`select value from baton.stats where key = 'refused_results'`);
    return Number(rows[0]?.value ?? 0);
  }

  /**
   * For attempts the kill interrupted (their lease was lost after it; an attempt that had already
   * failed and waits for its retry's back-off is not one): how long after the kill the next attempt
   * started elsewhere.
   */
  async recoveries(kills: { pid: number; at: number }[]): Promise<number[]> {
    const out: number[] = [];
    for (const kill of kills) {
      const { rows } = await this.admin.query<{ ms: number }>(
        `select (extract(epoch from min(n.at)) * 1000)::float8 - $2 as ms
         from public.chaos_ledger l
         join public.chaos_ledger n on n.workflow_id = l.workflow_id and n.task_key = l.task_key and n.attempt > l.attempt and n.pid <> l.pid
         where l.pid = $1 and l.at <= to_timestamp($2 / 1000.0)
           and exists (select 1 from baton.history h where h.workflow_id = l.workflow_id and h.kind = 'lease_lost'
                       and h.detail ->> 'key' = l.task_key and h.at >= to_timestamp($2 / 1000.0))
           and not exists (select 1 from public.chaos_ledger d where d.workflow_id = l.workflow_id and d.task_key = l.task_key
                           and d.attempt > l.attempt and d.at < to_timestamp($2 / 1000.0))
         group by l.workflow_id, l.task_key, l.attempt`,
        [kill.pid, kill.at],
      );
      out.push(...rows.map((r) => r.ms).filter((ms) => ms >= 0));
    }
    return out.sort((a, b) => a - b);
  }

  async restartServer(downMs = 1_000): Promise<void> {
    await this.server.stop();
    await new Promise((r) => setTimeout(r, downMs));
    this.server = await startEmbedded({
      dataDir: this.dir,
      port: Number(new URL(this.url).port),
      database: 'chaos',
      maxConnections: this.o.maxConnections ?? 400,
    });
  }

  async stop(): Promise<void> {
    this.supervising = false;
    await Promise.allSettled(this.senders);
    await Promise.all(
      [...this.procs].map((p) => {
        this.expectedExits.add(p.proc);
        p.proc.kill('SIGTERM');
        const hard = setTimeout(() => p.proc.kill('SIGKILL'), 8_000);
        return p.exited.finally(() => clearTimeout(hard));
      }),
    );
    await this.client?.close();
    await this.admin?.end();
    await this.server?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
