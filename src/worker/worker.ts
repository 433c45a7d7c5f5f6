/**
 * The worker: one process's pool of task slots.
 *
 *   claim (one round trip, up to free slots + prefetch) ──> buffer ──> slot (Slots) ──> run
 *     ^ NOTIFY baton_ready / poll / a slot frees                              │
 *     │                                                                      v
 *   renew all claims every ttl/3 (one statement)                 commit in batches (committer)
 *
 * Life cycle (a designed state machine, as in graphile-worker):
 *
 *   starting ──> running ──stop()/SIGINT/SIGTERM──> stopping ──> stopped
 *                                │ second signal / stop({ force: true })
 *                                └──────────────> forcing ─────┘
 *
 * stopping: claim nothing more; release buffered claims at once (attempt not
 * counted); let running tasks finish for `shutdownGraceMs`; then abort them
 * and release their claims so other workers take them at once; commit what
 * finished; deregister; close. forcing: abort everything now, release what
 * can be released, close.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import type { BatonConfig } from '../config.ts';
import { jsonCodec, type Codec } from '../codec.ts';
import { Listener } from '../db/listen.ts';
import { openBaton, type OpenedDatabase } from '../db/open.ts';
import { redactUrl } from '../db/pool.ts';
import { BatonError, CancelledError, LeaseLostError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { claimTasks, releaseClaims, type ClaimedTask } from '../store/claims.ts';
import { LeaseKeeper } from './leases.ts';
import { deregisterWorker } from '../store/workers.ts';
import type { Logger } from '../types.ts';
import type { Workflow } from '../workflow/builder.ts';
import type { Schedule } from '../workflow/schedule.ts';
import { normalizeTags } from '../workflow/names.ts';
import { Committer, type Settlement } from './committer.ts';
import { resolveWorkerConfig, workerStats, type WorkerOptions, type WorkerStats } from './options.ts';
import { onStopSignals } from './signals.ts';
import { announceWorker, definitionLabels } from './startup.ts';
import { Waker } from './waker.ts';
import { reportSettlement, runnerDeps, taskInfo, WorkerEmitter } from './emitter.ts';
import { cancelledBy, HeldTask, type Held, type Outcome } from './held.ts';
import { WorkerMetrics } from './metrics.ts';
import type { Finished } from './plan.ts';
import { Prefetch } from './prefetch.ts';
import { buildRegistry, checkSchedules } from './registry.ts';
import { warnStranded } from './stranded.ts';
import { attemptIo, runSystemStep, Slots, type RunnerDeps } from './runner.ts';

export type { WorkerOptions, WorkerStats };

type Phase = 'starting' | 'running' | 'stopping' | 'forcing' | 'stopped';

const MAX_CLAIM = 500;

export class Worker {
  readonly id: string;
  readonly events: WorkerEmitter;
  private phase: Phase = 'starting';
  private readonly log: Logger;
  private readonly config: BatonConfig;
  private readonly defs: Map<string, Workflow>;
  private readonly schedules: Schedule[];
  private readonly hashes: string[];
  private readonly tags: string[];
  private readonly prefetch: Prefetch;
  private readonly codec: Codec;
  private readonly slots: Slots;
  private readonly held = new Map<string, Held>();
  private readonly counters = { completed: 0, failed: 0, retried: 0, refused: 0, lost: 0, runaway: 0 };
  private readonly claimStats = { calls: 0, tasks: 0, ms: 0, along: 0 };
  /** Tasks asked for by claims still in flight (the loop's and those riding along commits). */
  private claimsInFlight = 0;
  private db!: OpenedDatabase;
  private listener: Listener | undefined;
  private committer!: Committer;
  private leases!: LeaseKeeper;
  private maintenance: { stop(): Promise<void> } | undefined;
  private strandedCheck: Promise<void> | undefined;
  private fetchLoop: Promise<void> | undefined;
  private readonly waker = new Waker();
  private wakeRequested = false;
  /** A task one lost lease from failing runs alone: nothing else runs or is claimed meanwhile. */
  private quarantined: Held | undefined;
  /** Such a task was claimed while others ran: it went back, and nothing is claimed until they end. */
  private draining = false;
  /** The last claim filled its limit, so more may be ready. Every other way work becomes ready sends NOTIFY. */
  private mayHaveMore = true;
  /** The fallback poll (missed notifications) claims when this time has come, however often the loop wakes. */
  private pollAt = 0;
  private stopping: Promise<void> | undefined;
  private removeSignalHandlers: () => void = () => undefined;
  private readonly runnerDeps: RunnerDeps;
  private readonly meter: WorkerMetrics | undefined;
  private resolveClosed!: () => void;
  /** Resolves when the worker has stopped (by stop() or a signal). */
  readonly closed: Promise<void> = new Promise((resolve) => (this.resolveClosed = resolve));

  constructor(private readonly options: WorkerOptions) {
    const resolved = resolveWorkerConfig(options);
    this.config = resolved.config;
    this.prefetch = new Prefetch(resolved.prefetch, this.config.concurrency);
    this.id = options.workerId ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.log = (options.logger ?? createLogger({ level: this.config.logLevel })).child({ workerId: this.id });
    this.events = new WorkerEmitter(this.log);
    this.schedules = checkSchedules(options.schedules);
    this.defs = buildRegistry([...(options.workflows ?? []), ...this.schedules.map((s) => s.workflow)], options.tasks);
    this.hashes = [...this.defs.keys()];
    this.tags = normalizeTags(options.tags ?? this.config.tags, 'tags');
    this.codec = options.codec ?? jsonCodec;
    this.meter = WorkerMetrics.create(options.metrics, this.config.concurrency, this.log, () => ({ pool: this.db?.pool, slotsBusy: this.slots.running, leasesHeld: this.held.size }));
    this.runnerDeps = { ...runnerDeps({ codec: this.codec, maxPayloadBytes: this.config.maxPayloadBytes, log: this.log, events: this.events, metrics: this.meter, workerId: this.id }, this.counters), io: attemptIo(this.id, this.codec, this.config, () => this.db?.pool) };
    this.slots = new Slots({
      size: this.config.concurrency,
      deps: this.runnerDeps,
      begin: (held) => this.leases.beginAttempt(held),
      finish: (held, outcome) => this.finish(held, outcome),
    });
  }

  /** @internal */
  async start(): Promise<void> {
    const c = this.config;
    this.db = await openBaton({
      config: c,
      connectionString: this.options.connectionString,
      pool: this.options.pool,
      applicationName: `baton:worker`,
      log: (m) => this.log.info(m),
      onPoolError: (error) => this.log.warn({ err: error }, 'a database connection was lost; reconnecting'),
    });
    try {
      const me = { id: this.id, tags: this.tags, concurrency: c.concurrency, definitions: [...this.defs.values()], schedules: this.schedules.map((s) => s.name) };
      await announceWorker(this.db.pool, me, this.log);
      // Not awaited: a warning for the operator must not delay the start (shutdown awaits it).
      this.strandedCheck = warnStranded(this.db.pool, this.defs.values(), c.claimTtlMs, this.log);
      this.committer = new Committer({
        pool: this.db.pool,
        workerId: this.id,
        windowMs: c.completionBatchMs,
        maxBatch: 500,
        maxInFlight: 2,
        log: this.log,
        onSettled: (f, how, status) => this.settled(f, how, status),
        onError: (error) => this.internalError('commit', error),
        onRoundTrip: this.meter && ((ms) => this.meter!.commitRoundTrip(ms)),
        claimAlong: () => {
          const want = this.room();
          if (want < 1 || this.phase !== 'running') return undefined;
          this.claimsInFlight += want;
          return { limit: want, ...this.claimFilter() };
        },
        onClaimed: (tasks, asked) => {
          this.claimsInFlight -= asked;
          this.mayHaveMore = tasks.length === asked;
          this.claimStats.along += tasks.length;
          for (const task of tasks) this.dispatch(task);
        },
      });
      if (this.db.url) {
        this.listener = new Listener({
          url: this.db.url,
          channels: ['baton_ready', 'baton_cancel'],
          onNotify: (channel, payload) => this.notified(channel, payload),
          onReconnect: () => this.requestFetch(),
          onError: (error) => this.log.warn({ err: error }, 'LISTEN connection lost; polling until it is back'),
        });
        await this.listener.start();
      }
      if (this.options.maintenance) {
        const ctx = { pool: this.db.pool, workerId: this.id, config: c, log: this.log, codec: this.codec, schedules: this.schedules, metrics: this.meter?.registry };
        this.maintenance = await this.options.maintenance(ctx);
      }
    } catch (error) {
      this.log.debug({ err: error }, 'worker start failed');
      await this.strandedCheck;
      await this.maintenance?.stop().catch(() => undefined);
      await this.listener?.stop();
      await this.db.close();
      throw error;
    }
    this.leases = new LeaseKeeper({
      pool: this.db.pool,
      workerId: this.id,
      ttlMs: c.claimTtlMs,
      held: this.held,
      lose: (h, reason) => this.lose(h, reason),
      giveBack: (h) => this.release([h], true),
      onError: (during, error) => this.internalError(during, error),
    });
    this.leases.start();
    if (this.options.handleSignals) this.installSignalHandlers();
    this.phase = 'running';
    this.fetchLoop = this.loop();
    const definitions = definitionLabels(this.defs.values());
    const database = this.db.url ? redactUrl(this.db.url) : 'shared pool';
    const schedules = this.schedules.map((s) => s.name);
    this.log.info({ concurrency: c.concurrency, prefetch: this.prefetch.fixed ?? 'adaptive', tags: this.tags, definitions, schedules, database }, 'worker started');
    this.events.emit('worker:start', { workerId: this.id });
  }

  get pool(): pg.Pool {
    return this.db.pool;
  }

  /** The prom-client registry of this worker's metrics, for apps that serve their own (empty with `metrics: false`). */
  metrics() {
    return this.meter?.registry ?? WorkerMetrics.emptyRegistry();
  }

  stats(): WorkerStats {
    return workerStats(this.slots, this.held.values(), this.counters, this.claimStats, this.committer);
  }

  // ---- claiming -----------------------------------------------------------

  /** Tasks this worker may hold: its slots, and those claimed ahead of them. */
  private capacity(): number {
    return this.config.concurrency + this.prefetch.value;
  }

  /** Free room for claimed tasks: slots + prefetch, less what is held or already asked for. */
  private room(): number {
    if (this.quarantined || this.draining) return 0;
    const capacity = this.capacity();
    const inHand = this.slots.running + this.slots.waitingCount + this.claimsInFlight;
    return Math.min(capacity - inHand, MAX_CLAIM);
  }

  private claimFilter() {
    // At most one task that one more lost lease would fail per claim (see dispatch: it runs alone;
    // a worker holding one claims nothing, room() is 0).
    return { tags: this.tags, hashes: this.hashes, ttlMs: this.config.claimTtlMs, isolateFrom: this.isolateFrom(), isolatedSlots: 1, declares: true };
  }

  private isolateFrom(): number {
    return Math.max(1, this.config.maxLeaseLosses - 1);
  }

  private requestFetch(): void {
    this.wakeRequested = true;
    this.waker.wake();
  }

  private notified(channel: string, payload: string): void {
    if (channel === 'baton_ready') this.requestFetch();
    else if (channel === 'baton_cancel') {
      const stops = cancelledBy(payload);
      for (const h of this.held.values()) if (stops(h)) this.lose(h, 'cancelled');
    }
  }

  private async loop(): Promise<void> {
    const c = this.config;
    let failures = 0;
    while (this.phase === 'running') {
      const capacity = this.capacity();
      const want = this.room();
      // Batch claims while the buffer still holds work; claim at once when slots would idle.
      const threshold = this.slots.waitingCount === 0 ? 1 : Math.max(1, Math.floor(capacity / 4));
      const backlogged = this.committer.size > capacity * 4;
      // A freed slot alone is no reason to ask: an empty claim costs the database a transaction and,
      // in flight when a notification comes, delays the claim that would find the new task.
      const worthAsking = this.wakeRequested || this.mayHaveMore || Date.now() >= this.pollAt;
      let full = false;
      let claimedNow = false;
      if (want >= threshold && !backlogged && worthAsking) {
        claimedNow = true;
        this.wakeRequested = false;
        this.pollAt = Date.now() + c.pollIntervalMs;
        try {
          const t0 = performance.now();
          this.claimsInFlight += want;
          let claimed: ClaimedTask[];
          try {
            claimed = await claimTasks(this.db.pool, { workerId: this.id, limit: want, ...this.claimFilter() });
          } finally {
            this.claimsInFlight -= want;
          }
          failures = 0;
          this.claimStats.calls += 1;
          this.claimStats.tasks += claimed.length;
          this.claimStats.ms += performance.now() - t0;
          this.meter?.claimRoundTrip(performance.now() - t0);
          if (claimed.length > 0 && this.events.has('task:claim')) this.events.emit('task:claim', { workerId: this.id, count: claimed.length });
          for (const task of claimed) this.dispatch(task);
          full = claimed.length === want;
          this.mayHaveMore = full;
        } catch (error) {
          failures += 1;
          this.wakeRequested = true;
          this.internalError('claim', error);
          await this.waker.sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
          continue;
        }
      }
      if (this.phase !== 'running') break;
      // Claim again at once only after a claim that may have left work behind; otherwise wait
      // (a freed slot, a notification or the poll wakes us). Never loop without awaiting.
      if (claimedNow && (full || this.wakeRequested)) continue;
      const untilPoll = this.pollAt - Date.now();
      await this.waker.sleep(untilPoll > 0 ? untilPoll : c.pollIntervalMs);
    }
  }

  private dispatch(task: ClaimedTask): void {
    const held = new HeldTask(task, this.defs.get(task.definitionHash)!, Date.now() + this.config.claimTtlMs);
    this.held.set(held.id, held);
    this.meter?.claimed(task);
    // Claimed while stopping: leave it buffered; shutdown releases it.
    if (this.phase !== 'running') return;
    const isolated = task.leaseLosses >= this.isolateFrom();
    if (task.kind !== 'task' && !isolated) {
      this.runSystem(held);
    } else if (this.quarantined || this.draining) {
      // Claimed in the same batch as an isolated task: back to the queue (the attempt too).
      void this.release([held], true);
    } else if (isolated) {
      // One more process crash fails it, and any task beside it could be what crashes processes
      // (a dead process loses the leases of all it held, running or waiting to commit). Give back
      // what has not started; run it alone if nothing else is held, else give it back too and
      // claim nothing until this worker holds nothing.
      this.slots.clearWaiting();
      void this.release([...this.held.values()].filter((h) => h.phase === 'buffered' && h !== held), true);
      if (this.held.size > 1) {
        this.draining = true;
        void this.release([held], true);
      } else {
        // Until its result is committed: a crash before that would still count against it.
        this.quarantined = held;
        if (task.kind === 'task') this.slots.add(held);
        else this.runSystem(held);
      }
    } else {
      this.slots.add(held);
    }
  }

  private runSystem(held: HeldTask): void {
    if (!held.task.suspect) this.finish(held, runSystemStep(held, this.runnerDeps));
    else void this.leases.mayRun(held).then((ok) => ok && !held.lost && this.finish(held, runSystemStep(held, this.runnerDeps)));
  }

  private endDrainWhenEmpty(): void {
    if (this.draining && this.held.size === 0) {
      this.draining = false;
      this.mayHaveMore = true;
      this.waker.wake();
    }
  }

  private finish(held: Held, outcome: Outcome): void {
    this.meter?.ended(held);
    if (this.held.get(held.id) !== held || held.lost === 'shutdown') return;
    held.phase = 'committing';
    this.committer.add({ held, outcome });
    this.wakeIfRoom();
  }

  private wakeIfRoom(): void {
    const capacity = this.capacity();
    const inHand = this.slots.running + this.slots.waitingCount;
    if (this.slots.waitingCount === 0 || capacity - inHand >= Math.max(1, Math.floor(capacity / 4))) this.waker.wake();
  }

  private settled(f: Finished, how: Settlement, finishedStatus?: string): void {
    if (this.held.get(f.held.id) === f.held) this.held.delete(f.held.id);
    this.prefetch.taskFinished();
    // An isolated task kept this worker from claiming (see dispatch): it may claim again.
    if (f.held === this.quarantined) this.quarantined = undefined;
    this.endDrainWhenEmpty();
    if (f.held.task.leaseLosses >= this.isolateFrom()) this.mayHaveMore = true;
    // The loop may be waiting for the commit backlog to shrink: it just did.
    this.wakeIfRoom();
    reportSettlement(this.events, this.log, this.counters, f, how, finishedStatus, this.meter);
  }

  // ---- leases -------------------------------------------------------------

  private lose(held: Held, reason: 'lease' | 'cancelled'): void {
    if (held.lost) return;
    held.lost = reason;
    this.counters.lost += 1;
    this.meter?.lost(held, reason);
    if (this.events.has('task:lost')) this.events.emit('task:lost', { ...taskInfo(held), reason });
    held.abort.abort(reason === 'cancelled' ? new CancelledError() : new LeaseLostError());
    // Not started yet: nothing to run or commit.
    if (held.phase === 'buffered') this.held.delete(held.id);
    if (held === this.quarantined && held.phase === 'buffered') this.quarantined = undefined;
    this.endDrainWhenEmpty();
  }

  private internalError(during: string, error: unknown): void {
    if (this.phase === 'stopped') return;
    const user = error instanceof BatonError && error.userError;
    this.log[user ? 'error' : 'warn']({ err: error, during }, `worker ${during} failed; retrying`);
    this.events.emit('worker:error', { workerId: this.id, error, during });
  }

  // ---- shutdown -----------------------------------------------------------

  private installSignalHandlers(): void {
    this.removeSignalHandlers = onStopSignals(
      () => {
        if (this.phase !== 'running') return false;
        this.log.info('stopping gracefully (send the signal again to force)');
        void this.stop();
        return true;
      },
      () => {
        if (this.phase !== 'stopping') return;
        this.log.warn('forcing stop');
        void this.stop({ force: true });
      },
    );
  }

  /** Stop: graceful by default (returns the stop already in flight); `force` aborts everything now. */
  stop(options: { force?: boolean; graceMs?: number } = {}): Promise<void> {
    if (options.force && this.phase === 'stopping') this.phase = 'forcing';
    if (this.stopping) return this.stopping;
    this.phase = options.force ? 'forcing' : 'stopping';
    this.events.emit('worker:stopping', { workerId: this.id, reason: options.force ? 'forced' : 'graceful' });
    this.stopping = this.shutdown(options.graceMs ?? this.config.shutdownGraceMs);
    return this.stopping;
  }

  /** Give claims back (not started: the attempt too) so that other workers run them at once. */
  private async release(helds: Held[], notStarted: boolean): Promise<void> {
    const live = helds.filter((h) => this.held.get(h.id) === h);
    for (const h of live) this.held.delete(h.id);
    if (live.length === 0) return;
    if (this.quarantined && live.includes(this.quarantined)) this.quarantined = undefined;
    this.endDrainWhenEmpty();
    try {
      const refs = live.map((h) => ({ workflowId: h.task.workflowId, taskKey: h.task.taskKey, epoch: h.task.epoch, notStarted }));
      const n = await releaseClaims(this.db.pool, this.id, refs);
      for (const h of live) this.events.emit('task:released', taskInfo(h));
      this.log.info({ released: n }, 'released claims for other workers');
    } catch (error) {
      this.internalError('release', error);
    }
  }

  private forced(): boolean {
    return this.phase === 'forcing';
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.waker.wake();
    await this.fetchLoop;

    // Claimed ahead but never started: give them back now.
    this.slots.clearWaiting();
    await this.release([...this.held.values()].filter((h) => h.phase === 'buffered'), true);

    // Let running tasks finish, up to the grace period (or not at all when forced).
    const deadline = Date.now() + (this.forced() ? 0 : graceMs);
    while (this.slots.running > 0 && Date.now() < deadline && !this.forced()) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const running = [...this.held.values()].filter((h) => h.phase === 'running');
    if (running.length > 0) {
      this.log.warn({ running: running.length }, 'aborting running tasks and releasing their claims');
      for (const h of running) {
        h.lost = 'shutdown';
        h.abort.abort(new CancelledError('the worker is shutting down'));
      }
      await this.release(running, false);
    }

    // Commit what finished (briefly when forced).
    await this.committer.drain(Date.now() + (this.forced() ? 2_000 : Math.max(5_000, graceMs)));
    const unsent = this.committer.takePending();
    if (unsent.length > 0) {
      this.log.warn({ unsent: unsent.length }, 'could not commit some results; their leases will expire and the tasks run again');
    }

    await this.leases.stop();
    this.removeSignalHandlers();
    await this.maintenance?.stop().catch((error) => this.log.warn({ err: error }, 'maintenance did not stop cleanly'));
    await this.listener?.stop();
    await this.strandedCheck;
    await deregisterWorker(this.db.pool, this.id).catch(() => undefined);
    await this.db.close();
    this.phase = 'stopped';
    this.log.info(this.counters, 'worker stopped');
    this.events.emit('worker:stop', { workerId: this.id });
    this.resolveClosed();
  }
}
